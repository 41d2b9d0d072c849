package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
)

// ConfigSpec describes a pipeline's run config type. Generated code builds
// it with ConfigOf; it encodes a Request's config for the database and
// decodes it on whichever process runs an asset.
type ConfigSpec struct {
	typeName string
	encode   func(v any) ([]byte, error)
	decode   func(data []byte) (any, error)
}

// ConfigOf returns the ConfigSpec of T.
func ConfigOf[T any]() *ConfigSpec {
	var zero T
	name := fmt.Sprintf("%T", zero)
	return &ConfigSpec{
		typeName: name,
		encode: func(v any) ([]byte, error) {
			switch c := v.(type) {
			case T:
				return json.Marshal(c)
			case *T:
				if c == nil {
					return nil, fmt.Errorf("%w: nil *%s", ErrBadConfig, name)
				}
				return json.Marshal(*c)
			}
			return nil, fmt.Errorf("%w: config has type %T, but the pipeline's config type is %s", ErrBadConfig, v, name)
		},
		decode: func(data []byte) (any, error) {
			var c T
			if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
				// json would leave c zero: a config nobody wrote.
				return nil, fmt.Errorf("%w: decoding %s: null: want a JSON object", ErrBadConfig, name)
			}
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&c); err != nil {
				return nil, fmt.Errorf("%w: decoding %s: %v", ErrBadConfig, name, err)
			}
			if _, err := dec.Token(); err != io.EOF {
				return nil, fmt.Errorf("%w: decoding %s: trailing data after the JSON value", ErrBadConfig, name)
			}
			return c, nil
		},
	}
}

// TypeName is the config type's name, as fmt's %T prints it.
func (c *ConfigSpec) TypeName() string { return c.typeName }

// Encode checks that v has the config type and encodes it.
func (c *ConfigSpec) Encode(v any) ([]byte, error) { return c.encode(v) }

// Decode decodes config JSON strictly (unknown fields are an error).
func (c *ConfigSpec) Decode(data []byte) (any, error) { return c.decode(data) }

// ResourcesSpec describes a pipeline's generated Resources struct.
type ResourcesSpec struct {
	typeName string
	check    func(v any) bool
}

// ResourcesOf returns the ResourcesSpec of the generated struct T.
func ResourcesOf[T any]() *ResourcesSpec {
	var zero T
	return &ResourcesSpec{
		typeName: fmt.Sprintf("%T", zero),
		check: func(v any) bool {
			_, ok := v.(T)
			return ok
		},
	}
}

// nilFields lists the fields of a Resources struct value that hold a nil
// pointer, interface, map, func, chan or slice. It runs once per Bind.
func nilFields(v any) []string {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice:
			if f.IsNil() {
				out = append(out, rv.Type().Field(i).Name)
			}
		}
	}
	return out
}

// ItemSpec describes the item type of a scatter asset. Generated code
// builds it with ItemOf.
type ItemSpec struct {
	typeName string
	key      func(raw []byte) (key string, keyed bool, err error)
}

// ScatterKeyer is implemented by item types that name their items; items
// without it are keyed by position.
type ScatterKeyer interface{ ScatterKey() string }

// ItemOf returns the ItemSpec of T.
func ItemOf[T any]() *ItemSpec {
	var zero T
	return &ItemSpec{
		typeName: fmt.Sprintf("%T", zero),
		key: func(raw []byte) (string, bool, error) {
			var v T
			if _, ok := any(v).(ScatterKeyer); !ok {
				if _, ok := any(&v).(ScatterKeyer); !ok {
					return "", false, nil
				}
			}
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", true, fmt.Errorf("item of type %s: %w", fmt.Sprintf("%T", v), err)
			}
			if k, ok := any(v).(ScatterKeyer); ok {
				return k.ScatterKey(), true, nil
			}
			return any(&v).(ScatterKeyer).ScatterKey(), true, nil
		},
	}
}

// keys returns each item's key, or nil when T has no ScatterKey.
func (s *ItemSpec) keys(items []json.RawMessage) ([]string, error) {
	if s == nil || len(items) == 0 {
		return nil, nil
	}
	if _, keyed, err := s.key(items[0]); err != nil || !keyed {
		return nil, err
	}
	out := make([]string, len(items))
	for i, raw := range items {
		k, _, err := s.key(raw)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		out[i] = k
	}
	return out, nil
}
