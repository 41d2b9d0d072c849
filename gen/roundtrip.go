package gen

import (
	"fmt"
	"go/types"
	"reflect"
)

// Values round-trip: the runtime stores an asset's value (and the run
// config) as JSON and decodes it into the same Go type for dependents and
// loaders. A type that JSON cannot carry back to an equal value would make
// a dependent see a zero or partial value while every status says
// succeeded, so the generator rejects it here, naming the part that does
// not survive.

// roundTripProblem returns why values of t do not survive encoding/json
// and back, or "" when they do. A type with its own codec (MarshalJSON
// and UnmarshalJSON, or MarshalText and UnmarshalText) is trusted, and so
// is the top-level type when it has MarshalBinary and UnmarshalBinary,
// which the runtime's value codec honours for the value as a whole.
func roundTripProblem(t types.Type, qual types.Qualifier) string {
	str := func(t types.Type) string { return types.TypeString(t, qual) }
	if hasCodec(t, "MarshalBinary", "UnmarshalBinary") {
		return ""
	}
	seen := map[types.Type]bool{}
	var walk func(t types.Type) string
	walk = func(t types.Type) string {
		if seen[t] {
			return ""
		}
		seen[t] = true
		if hasCodec(t, "MarshalJSON", "UnmarshalJSON") || hasCodec(t, "MarshalText", "UnmarshalText") {
			return ""
		}
		switch u := t.Underlying().(type) {
		case *types.Basic:
			switch {
			case u.Info()&types.IsComplex != 0:
				return fmt.Sprintf("%s is a complex number, which JSON has no form for", str(t))
			case u.Kind() == types.UnsafePointer:
				return fmt.Sprintf("%s is a pointer JSON cannot follow", str(t))
			}
		case *types.Chan:
			return fmt.Sprintf("%s is a channel", str(t))
		case *types.Signature:
			return fmt.Sprintf("%s is a function", str(t))
		case *types.Interface:
			return fmt.Sprintf("%s is an interface, which JSON cannot decode into a concrete type", str(t))
		case *types.Pointer:
			return walk(u.Elem())
		case *types.Slice:
			return walk(u.Elem())
		case *types.Array:
			return walk(u.Elem())
		case *types.Map:
			if !jsonKey(u.Key()) {
				return fmt.Sprintf("%s has keys of type %s, which JSON object keys cannot carry (use string or integer keys, or a key type with MarshalText and UnmarshalText)", str(t), str(u.Key()))
			}
			return walk(u.Elem())
		case *types.Struct:
			return structProblem(t, u, str, walk)
		}
		return ""
	}
	return walk(t)
}

// structProblem checks a struct's fields: an unexported field is dropped
// by encoding/json, so it must be marked json:"-" to say that is meant.
func structProblem(t types.Type, s *types.Struct, str func(types.Type) string, walk func(types.Type) string) string {
	name := str(t)
	exported := 0
	for i := range s.NumFields() {
		f := s.Field(i)
		tag := reflect.StructTag(s.Tag(i)).Get("json")
		if tag == "-" {
			continue
		}
		if embeddedStruct(f) {
			// encoding/json promotes an embedded struct's fields, exported
			// or not; other embedded types follow the field rules.
			exported++
			if problem := walk(f.Type()); problem != "" {
				return problem
			}
			continue
		}
		if !f.Exported() {
			continue
		}
		exported++
		if problem := walk(f.Type()); problem != "" {
			return fmt.Sprintf("field %s.%s: %s", name, f.Name(), problem)
		}
	}
	for i := range s.NumFields() {
		f := s.Field(i)
		if f.Exported() || embeddedStruct(f) || reflect.StructTag(s.Tag(i)).Get("json") == "-" {
			continue
		}
		if exported == 0 {
			return fmt.Sprintf("%s has no exported fields, so it would be stored as {}", name)
		}
		return fmt.Sprintf("field %s.%s is unexported, so it would be dropped (export it, or tag it json:\"-\" if that is meant)", name, f.Name())
	}
	return ""
}

// embeddedStruct reports whether f embeds a struct type (or a pointer to
// one).
func embeddedStruct(f *types.Var) bool {
	if !f.Embedded() {
		return false
	}
	t := f.Type()
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	_, ok := t.Underlying().(*types.Struct)
	return ok
}

// hasCodec reports whether t or *t has both methods.
func hasCodec(t types.Type, marshal, unmarshal string) bool {
	if _, ok := t.Underlying().(*types.Interface); ok {
		return false
	}
	if _, ok := t.(*types.Pointer); !ok {
		t = types.NewPointer(t)
	}
	has := func(name string) bool {
		obj, _, _ := types.LookupFieldOrMethod(t, true, nil, name)
		_, ok := obj.(*types.Func)
		return ok
	}
	return has(marshal) && has(unmarshal)
}

// jsonKey reports whether encoding/json can write and read map keys of
// type k: strings, integers, and types with MarshalText and UnmarshalText.
func jsonKey(k types.Type) bool {
	if b, ok := k.Underlying().(*types.Basic); ok {
		return b.Info()&(types.IsString|types.IsInteger) != 0
	}
	return hasCodec(k, "MarshalText", "UnmarshalText")
}
