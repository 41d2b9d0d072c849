package runtime

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
)

func decodeJSON(data []byte, into any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(into)
}

// decodeItem decodes one scatter item, called once per item: a type
// with no struct in it, for which unknown fields cannot arise, decodes
// with json.Unmarshal, without a Decoder and its buffer.
func decodeItem(data []byte, into any) error {
	if holdsStruct(reflect.TypeOf(into), 0) {
		return decodeJSON(data, into)
	}
	return json.Unmarshal(data, into)
}

// holdsStruct reports whether values of t may hold a struct (or, past a
// few levels of nesting, might).
func holdsStruct(t reflect.Type, depth int) bool {
	if depth > 4 {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		return true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return holdsStruct(t.Elem(), depth+1)
	case reflect.Map:
		return holdsStruct(t.Key(), depth+1) || holdsStruct(t.Elem(), depth+1)
	}
	return false
}

// The value codec stores an asset's value as JSON. A type with only a
// binary codec (encoding.BinaryMarshaler and BinaryUnmarshaler) is stored
// as the JSON string of its bytes; the generator accepts such a type only
// as a whole value, where this codec sees it.

// encodeValue encodes an asset's value.
func encodeValue(v any) ([]byte, error) {
	if v != nil {
		// Through a pointer, so that pointer methods count as the
		// generator counts them.
		rv := reflect.ValueOf(v)
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		v = p.Interface()
		if bm, ok := v.(encoding.BinaryMarshaler); ok && !jsonCodec(v) {
			b, err := bm.MarshalBinary()
			if err != nil {
				return nil, err
			}
			return json.Marshal(b)
		}
	}
	return json.Marshal(v)
}

// decodeValue decodes what encodeValue wrote into into, a pointer.
func decodeValue(data []byte, into any) error {
	if bu, ok := into.(encoding.BinaryUnmarshaler); ok && !jsonCodec(into) {
		var b []byte
		if err := json.Unmarshal(data, &b); err != nil {
			return err
		}
		return bu.UnmarshalBinary(b)
	}
	return decodeJSON(data, into)
}

// jsonCodec reports whether encoding/json uses p's own methods: p is a
// pointer to the value.
func jsonCodec(p any) bool {
	switch p.(type) {
	case json.Marshaler, json.Unmarshaler, encoding.TextMarshaler, encoding.TextUnmarshaler:
		return true
	}
	return false
}
