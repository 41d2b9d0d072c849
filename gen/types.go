package gen

import (
	"go/types"
)

// isNamed reports whether t is the named type path.name (or an instance of
// it, for generic types).
func isNamed(t types.Type, path, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	obj := n.Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == path && obj.Name() == name
}

// typeArg returns the single type argument of an instance such as
// flowstone.Outcome[T].
func typeArg(t types.Type) types.Type {
	n := types.Unalias(t).(*types.Named)
	if n.TypeArgs().Len() != 1 {
		return nil
	}
	return n.TypeArgs().At(0)
}

// outcomeOf returns T for flowstone.Outcome[T], or nil.
func outcomeOf(t types.Type) types.Type {
	if isNamed(t, flowstonePath, "Outcome") {
		return typeArg(t)
	}
	return nil
}

// previousOf returns T for flowstone.Previous[T], or nil.
func previousOf(t types.Type) types.Type {
	if isNamed(t, flowstonePath, "Previous") {
		return typeArg(t)
	}
	return nil
}

// partitionMapOf returns T for map[flowstone.Partition]T, or nil.
func partitionMapOf(t types.Type) types.Type {
	if m, ok := types.Unalias(t).(*types.Map); ok && isNamed(m.Key(), flowstonePath, "Partition") {
		return m.Elem()
	}
	return nil
}

// sliceElem returns E for []E, or nil.
func sliceElem(t types.Type) types.Type {
	if s, ok := types.Unalias(t).(*types.Slice); ok {
		return s.Elem()
	}
	return nil
}

// qualifier prints types the way the annotated package's source spells
// them: local names bare, others by package name.
func qualifier(local *types.Package) types.Qualifier {
	return func(p *types.Package) string {
		if p == local {
			return ""
		}
		return p.Name()
	}
}

// typeProblem walks t and returns the first part that generated code could
// not spell: an invalid type, or an unexported name from another package.
func typeProblem(t types.Type, local *types.Package) (invalid bool, unexported types.Type) {
	seen := map[types.Type]bool{}
	var walk func(types.Type) bool
	walk = func(t types.Type) bool {
		if t == nil || seen[t] {
			return false
		}
		seen[t] = true
		switch t := t.(type) {
		case *types.Basic:
			if t.Kind() == types.Invalid {
				invalid = true
				return true
			}
		case *types.Alias:
			if t.Obj().Pkg() != nil && t.Obj().Pkg() != local && !t.Obj().Exported() {
				unexported = t
				return true
			}
			args := t.TypeArgs()
			for i := range args.Len() {
				if walk(args.At(i)) {
					return true
				}
			}
			if b, ok := types.Unalias(t).(*types.Basic); ok && b.Kind() == types.Invalid {
				invalid = true
				return true
			}
		case *types.Named:
			if t.Obj().Pkg() != nil && t.Obj().Pkg() != local && !t.Obj().Exported() {
				unexported = t
				return true
			}
			args := t.TypeArgs()
			for i := range args.Len() {
				if walk(args.At(i)) {
					return true
				}
			}
		case *types.Pointer:
			return walk(t.Elem())
		case *types.Slice:
			return walk(t.Elem())
		case *types.Array:
			return walk(t.Elem())
		case *types.Map:
			return walk(t.Key()) || walk(t.Elem())
		case *types.Chan:
			return walk(t.Elem())
		case *types.Signature:
			return walk(t.Params()) || walk(t.Results())
		case *types.Tuple:
			for i := range t.Len() {
				if walk(t.At(i).Type()) {
					return true
				}
			}
		case *types.Struct:
			for i := range t.NumFields() {
				if !t.Field(i).Exported() && t.Field(i).Pkg() != local {
					unexported = t
					return true
				}
				if walk(t.Field(i).Type()) {
					return true
				}
			}
		case *types.Interface:
			for i := range t.NumEmbeddeds() {
				if walk(t.EmbeddedType(i)) {
					return true
				}
			}
			for i := range t.NumExplicitMethods() {
				m := t.ExplicitMethod(i)
				if !m.Exported() && m.Pkg() != local {
					unexported = t
					return true
				}
				if walk(m.Type()) {
					return true
				}
			}
		case *types.TypeParam:
			unexported = t
			return true
		}
		return false
	}
	walk(t)
	return invalid, unexported
}

// findPackage looks for the package with path among local's imports,
// transitively, and among the packages named in extra's method set.
func findPackage(local *types.Package, path string, extra types.Type) *types.Package {
	seen := map[*types.Package]bool{}
	var visit func(*types.Package) *types.Package
	visit = func(p *types.Package) *types.Package {
		if p == nil || seen[p] {
			return nil
		}
		seen[p] = true
		if p.Path() == path {
			return p
		}
		for _, imp := range p.Imports() {
			if found := visit(imp); found != nil {
				return found
			}
		}
		return nil
	}
	if found := visit(local); found != nil {
		return found
	}
	if extra == nil {
		return nil
	}
	ms := types.NewMethodSet(extra)
	for i := range ms.Len() {
		sig := ms.At(i).Type().(*types.Signature)
		for _, tup := range []*types.Tuple{sig.Params(), sig.Results()} {
			for j := range tup.Len() {
				t := tup.At(j).Type()
				if p, ok := t.(*types.Pointer); ok {
					t = p.Elem()
				}
				if n, ok := types.Unalias(t).(*types.Named); ok && n.Obj().Pkg() != nil {
					if found := visit(n.Obj().Pkg()); found != nil {
						return found
					}
				}
			}
		}
	}
	return nil
}

// implements reports whether t implements the interface path.name.
func implements(local *types.Package, t types.Type, path, name string) bool {
	pkg := findPackage(local, path, t)
	if pkg == nil {
		return false
	}
	obj, ok := pkg.Scope().Lookup(name).(*types.TypeName)
	if !ok {
		return false
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	return ok && types.Implements(t, iface)
}
