package gen

import (
	"go/token"
	"go/types"
	"reflect"
	"strings"
)

// parquetioPath is the package whose IO stores values as Parquet files.
const parquetioPath = flowstonePath + "/parquetio"

// storesParquet reports whether t, the type of an io= variable, is
// parquetio's IO: its assets' values must be tables Parquet can hold.
func storesParquet(t types.Type) bool {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == parquetioPath && n.Obj().Name() == "IO"
}

// parquetValue reports, at the io= option or at the offending field when
// the annotated package declares it, a value Parquet cannot hold: the
// value must be a slice of structs (or of pointers to structs) whose
// exported fields map to Parquet columns.
func (an *analyser) parquetValue(a *asset, o *optValue, name string) {
	if a.value == nil {
		an.errs.at(o.pos, msgParquetTable, a.key, name, "no value")
		return
	}
	s, ok := types.Unalias(a.value).Underlying().(*types.Slice)
	var row *types.Struct
	if ok {
		elem := types.Unalias(s.Elem())
		if p, isPtr := elem.Underlying().(*types.Pointer); isPtr {
			elem = types.Unalias(p.Elem())
		}
		row, _ = elem.Underlying().(*types.Struct)
		if row != nil && !isTime(elem) {
			w := parquetWalk{an: an, seen: map[types.Type]bool{elem: true}}
			if w.structFields(types.TypeString(elem, an.qual), row); w.problem != "" {
				pos := o.pos
				if w.at.IsValid() {
					pos = w.at
				}
				an.errs.at(pos, msgParquetField, a.key, name, w.where, an.typeString(w.t), w.problem)
			} else if !w.columns {
				an.errs.at(o.pos, msgParquetTable, a.key, name, an.typeString(a.value)+", whose rows have no exported fields")
			}
			return
		}
	}
	an.errs.at(o.pos, msgParquetTable, a.key, name, an.typeString(a.value))
}

// parquetWalk finds the first field Parquet cannot hold.
type parquetWalk struct {
	an      *analyser
	seen    map[types.Type]bool // structs on the path, to catch recursion
	columns bool                // the row has at least one column

	problem string
	where   string // "field Trip.Meta"
	t       types.Type
	at      token.Pos
}

func isTime(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}

func (w *parquetWalk) structFields(path string, st *types.Struct) {
	for i := range st.NumFields() {
		f := st.Field(i)
		tag, _ := reflect.StructTag(st.Tag(i)).Lookup("parquet")
		if !f.Exported() || tag == "-" || strings.HasPrefix(tag, "-,") {
			continue
		}
		w.columns = true
		where := path + "." + f.Name()
		if w.check(f.Type(), false); w.problem != "" {
			if w.where == "" {
				w.where, w.t = "field "+where, f.Type()
				if f.Pkg() == w.an.local {
					w.at = f.Pos()
				}
			}
			return
		}
	}
}

// check records a problem with t; underPtr is true below a pointer.
func (w *parquetWalk) check(t types.Type, underPtr bool) {
	fail := func(why string) { w.problem, w.t = why, t }
	if isTime(t) {
		return
	}
	switch u := types.Unalias(t).Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.UnsafePointer:
			fail("Parquet has no pointer type")
		case u.Info()&types.IsComplex != 0:
			fail("Parquet has no complex numbers; store real and imaginary parts as two fields")
		case u.Info()&(types.IsBoolean|types.IsNumeric|types.IsString) == 0:
			fail("Parquet has no column for it")
		}
	case *types.Pointer:
		if underPtr {
			fail("a pointer to a pointer has no Parquet form")
			return
		}
		switch types.Unalias(u.Elem()).Underlying().(type) {
		case *types.Slice, *types.Map:
			fail("a pointer to a list or map has no Parquet form; drop the pointer (nil and empty are both stored as empty)")
			return
		}
		w.check(u.Elem(), true)
	case *types.Slice:
		if b, ok := types.Unalias(u.Elem()).Underlying().(*types.Basic); ok && b.Kind() == types.Byte {
			return
		}
		if _, nested := types.Unalias(u.Elem()).Underlying().(*types.Slice); nested {
			if b, ok := types.Unalias(u.Elem()).Underlying().(*types.Slice).Elem().Underlying().(*types.Basic); !ok || b.Kind() != types.Byte {
				fail("a list of lists needs a struct in between ([]struct{ Items []T })")
				return
			}
		}
		w.check(u.Elem(), false)
	case *types.Array:
		if b, ok := types.Unalias(u.Elem()).Underlying().(*types.Basic); !ok || b.Kind() != types.Byte {
			fail("Parquet holds fixed-size byte arrays only; use a slice")
		}
	case *types.Map:
		if b, ok := types.Unalias(u.Key()).Underlying().(*types.Basic); !ok || b.Info()&(types.IsBoolean|types.IsNumeric|types.IsString) == 0 || b.Info()&types.IsComplex != 0 {
			fail("a Parquet map key must be a string, number or bool")
			return
		}
		w.check(u.Elem(), false)
	case *types.Struct:
		if w.seen[t] {
			fail("a recursive type has no fixed set of columns")
			return
		}
		w.seen[t] = true
		defer delete(w.seen, t)
		inner := parquetWalk{an: w.an, seen: w.seen}
		inner.structFields(types.TypeString(t, w.an.qual), u)
		if inner.problem != "" {
			w.problem, w.where, w.t, w.at = inner.problem, inner.where, inner.t, inner.at
		}
	case *types.Interface:
		fail("an interface has no fixed Parquet columns; use a concrete type")
	case *types.Chan, *types.Signature:
		fail("Parquet cannot store it")
	default:
		fail("Parquet cannot store it")
	}
}
