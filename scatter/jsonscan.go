package scatter

import "encoding/json"

// The stored arrays (a batch's items, its results) are split without
// decoding them: encoding/json's Unmarshal of a 100,000-item scatter's
// results took most of its gather's CPU. The arrays are valid JSON (written
// by encoding/json or appendRecord); anything else is left to
// encoding/json, which reports it.

// eachElement calls fn with each element of the JSON array data, as its
// raw bytes; ok is false when data is not an array as this reads them.
func eachElement(data []byte, fn func(elem []byte)) (ok bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return skipSpace(data, i+1) == len(data)
	}
	for i < len(data) {
		end, ok := skipValue(data, i)
		if !ok {
			return false
		}
		fn(data[i:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ']':
			return skipSpace(data, i+1) == len(data)
		case ',':
			i = skipSpace(data, i+1)
		default:
			return false
		}
	}
	return false
}

// scanObject calls fn with each member of the JSON object at data[i]:
// its name's raw bytes (between the quotes, escapes left as they are) and
// its value's; it returns the object's end.
func scanObject(data []byte, i int, fn func(name, value []byte)) (end int, ok bool) {
	if i >= len(data) || data[i] != '{' {
		return 0, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for i < len(data) {
		if data[i] != '"' {
			return 0, false
		}
		nameEnd, ok := skipString(data, i)
		if !ok {
			return 0, false
		}
		j := skipSpace(data, nameEnd)
		if j >= len(data) || data[j] != ':' {
			return 0, false
		}
		j = skipSpace(data, j+1)
		end, ok := skipValue(data, j)
		if !ok {
			return 0, false
		}
		fn(data[i+1:nameEnd-1], data[j:end])
		i = skipSpace(data, end)
		if i >= len(data) {
			return 0, false
		}
		switch data[i] {
		case '}':
			return i + 1, true
		case ',':
			i = skipSpace(data, i+1)
		default:
			return 0, false
		}
	}
	return 0, false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value at data[i].
func skipValue(data []byte, i int) (int, bool) {
	if i >= len(data) {
		return 0, false
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for ; i < len(data); i++ {
			switch data[i] {
			case '"':
				end, ok := skipString(data, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	j := i // a number, true, false or null
	for j < len(data) {
		c := data[j]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			break
		}
		j++
	}
	return j, j > i
}

// skipString returns the end of the JSON string at data[i], a '"'.
func skipString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++ // the character escaped
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// splitArray returns the elements of the JSON array data.
func splitArray(data []byte) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if eachElement(data, func(elem []byte) { out = append(out, elem) }) {
		return out, nil
	}
	out = nil
	err := json.Unmarshal(data, &out)
	return out, err
}

// parseRecords appends to recs the records of a batch's results (see
// appendRecord): idx, status and the raw value or error of each.
func parseRecords(data []byte, recs []batchRecord) ([]batchRecord, error) {
	start := len(recs)
	if out, ok := scanRecords(data, recs); ok {
		return out, nil
	}
	// Not as appendRecord writes them: encoding/json decides.
	var full []storedRecord
	if err := json.Unmarshal(data, &full); err != nil {
		return recs[:start], err
	}
	recs = recs[:start]
	for _, f := range full {
		r := batchRecord{Idx: f.Idx, Status: f.Status, Value: f.Value, Attempts: f.Attempts, Started: f.Started, Finished: f.Finished}
		r.Key, _ = json.Marshal(f.Key)
		if f.Status == ItemFailed {
			r.Error, _ = json.Marshal(f.Error)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// scanRecords is parseRecords in one pass over data, without decoding.
func scanRecords(data []byte, recs []batchRecord) ([]batchRecord, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return recs, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return recs, skipSpace(data, i+1) == len(data)
	}
	for i < len(data) {
		r := batchRecord{Idx: -1}
		end, ok := scanObject(data, i, func(name, value []byte) {
			switch string(name) {
			case "idx":
				r.Idx = atoi(value)
			case "status":
				switch string(value) {
				case `"` + ItemSucceeded + `"`:
					r.Status = ItemSucceeded
				case `"` + ItemFailed + `"`:
					r.Status = ItemFailed
				default:
					r.Status = "other"
				}
			case "value":
				r.Value = value
			case "error":
				r.Error = value
			case "key":
				r.Key = value
			case "attempts":
				r.Attempts = atoi(value)
			case "started_at":
				r.Started = int64(atoi(value))
			case "finished_at":
				r.Finished = int64(atoi(value))
			}
		})
		if !ok || r.Idx < 0 || r.Status == "" || r.Status == ItemFailed && r.Error == nil {
			return recs, false
		}
		recs = append(recs, r)
		i = skipSpace(data, end)
		if i >= len(data) {
			return recs, false
		}
		switch data[i] {
		case ']':
			return recs, skipSpace(data, i+1) == len(data)
		case ',':
			i = skipSpace(data, i+1)
		default:
			return recs, false
		}
	}
	return recs, false
}

// unquote returns the string the JSON string raw holds.
func unquote(raw []byte) (string, error) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		plain := true
		for _, c := range raw[1 : len(raw)-1] {
			if c == '\\' || c == '"' {
				plain = false
				break
			}
		}
		if plain {
			return string(raw[1 : len(raw)-1]), nil
		}
	}
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err
}

// atoi parses a non-negative decimal integer, -1 when it is not one.
func atoi(b []byte) int {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = 10*n + int(c-'0')
	}
	return n
}
