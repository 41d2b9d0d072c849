package scatter

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Splitting a stored array without decoding it gives what encoding/json
// gives, whitespace, escapes and nesting included; what it cannot read
// is left to encoding/json.
func TestSplitArrayMatchesEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`[]`, ` [ ] `, `[1]`, `[1,"a",null,true,{"x":[1,{"y":"]}"}]},[],"\"\\"]`,
		"[\n  {\"a\": 1,\n   \"b\": [2, 3]},\n  \"x\\u0022\"\n]", `[1,]`, `[1`, `{}`,
	} {
		got, err := splitArray([]byte(in))
		var want []json.RawMessage
		wantErr := json.Unmarshal([]byte(in), &want)
		if (err != nil) != (wantErr != nil) || fmt.Sprintf("%s", got) != fmt.Sprintf("%s", want) {
			t.Errorf("%s: got %s, %v; want %s, %v", in, got, err, want, wantErr)
		}
	}
}

// The records appendRecord writes read back as encoding/json reads them,
// keys and errors that need escaping included, and records in another
// shape are read by encoding/json.
func TestRecordsReadBack(t *testing.T) {
	now := time.UnixMicro(1_700_000_000_000_000)
	rs := []ItemResult{
		{Index: 7, Key: "a\"b\\c\n", Value: json.RawMessage(`{"v":"x,}]"}`), Attempts: 2, Started: now, Finished: now},
		{Index: 8, Err: "bad <input> \"é\"", Attempts: 1, Started: now, Finished: now},
		{Index: 9, Value: json.RawMessage(`null`), Attempts: 1, Started: now, Finished: now},
	}
	var buf []byte
	buf = append(buf, '[')
	for i, r := range rs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendRecord(buf, r)
	}
	buf = append(buf, ']')
	var full []storedRecord
	if err := json.Unmarshal(buf, &full); err != nil {
		t.Fatalf("%s: %v", buf, err)
	}
	if full[0].Key != "a\"b\\c\n" || full[1].Key != "8" || full[1].Error != rs[1].Err || full[0].Attempts != 2 ||
		full[0].Started != now.UnixMicro() || string(full[0].Value) != `{"v":"x,}]"}` {
		t.Fatalf("decoded %+v", full)
	}
	for _, data := range [][]byte{buf, []byte(`[{"status":"failed","error":"e\"","idx":3},{"idx":4,"value":5,"status":"succeeded","extra":{"a":1}}]`)} {
		recs, err := parseRecords(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		var want []storedRecord
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			var msg string
			if r.Error != nil {
				if err := json.Unmarshal(r.Error, &msg); err != nil {
					t.Fatal(err)
				}
			}
			if r.Idx != want[i].Idx || r.Status != want[i].Status || string(r.Value) != string(want[i].Value) || msg != want[i].Error {
				t.Errorf("record %d: %+v (error %q); want %+v", i, r, msg, want[i])
			}
		}
	}
	if _, err := parseRecords([]byte(`[{"idx":"x"}`), nil); err == nil {
		t.Error("a broken array read without an error")
	}
}
