package runtime

import (
	"testing"
	"time"
)

// blob has only a binary codec, which the value codec honours.
type blob struct{ data []byte }

func (b blob) MarshalBinary() ([]byte, error) { return b.data, nil }

func (b *blob) UnmarshalBinary(data []byte) error {
	b.data = append([]byte(nil), data...)
	return nil
}

func TestValueCodecRoundTrips(t *testing.T) {
	t.Parallel()
	data, err := encodeValue(blob{data: []byte("42")})
	if err != nil {
		t.Fatal(err)
	}
	var got blob
	if err := decodeValue(data, &got); err != nil {
		t.Fatal(err)
	}
	if string(got.data) != "42" {
		t.Errorf("binary value came back as %q, want 42", got.data)
	}
	// A JSON codec wins over the binary one: time.Time has both.
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if data, err = encodeValue(at); err != nil {
		t.Fatal(err)
	}
	if string(data) != `"2024-01-02T03:04:05Z"` {
		t.Errorf("time encoded as %s, want its JSON form", data)
	}
	var back time.Time
	if err := decodeValue(data, &back); err != nil || !back.Equal(at) {
		t.Errorf("time came back as %v, %v", back, err)
	}
}
