package gen

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"runtime"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// loadedPackage is one annotated package, parsed and type-checked.
type loadedPackage struct {
	Name, PkgPath, Dir string
	Fset               *token.FileSet
	Syntax             []*ast.File
	Types              *types.Package
	// Errors are list and parse errors, reported as they are.
	Errors []error
	// TypeErrors are left to go build, except where they make an asset
	// signature unusable.
	TypeErrors []types.Error
}

// load lists the packages matching patterns (relative to dir), reads their
// dependencies' types from export data and type-checks the packages from
// source.
//
// It does what go/packages does with NeedSyntax|NeedTypes, in two steps,
// because that mode also compiles the annotated packages themselves (go
// list -export), which costs more than everything else the generator does
// and is not needed: only their dependencies' export data is.
func load(ctx context.Context, dir string, patterns []string) ([]*loadedPackage, error) {
	list := &packages.Config{Context: ctx, Dir: dir, Mode: packages.NeedName | packages.NeedFiles | packages.NeedImports | packages.NeedModule}
	roots, err := packages.Load(list, patterns...)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", strings.Join(patterns, " "), err)
	}
	var deps []string
	seen := map[string]bool{"unsafe": true, "C": true}
	for _, r := range roots {
		for _, imp := range r.Imports {
			if !seen[imp.PkgPath] {
				seen[imp.PkgPath] = true
				deps = append(deps, imp.PkgPath)
			}
		}
	}
	slices.Sort(deps)
	// Reading the dependencies' export data runs go list again, a process
	// of its own; parse the packages' files meanwhile.
	byPath := map[string]*types.Package{"unsafe": types.Unsafe}
	var depsErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(deps) == 0 {
			return
		}
		exp := &packages.Config{Context: ctx, Dir: dir, Mode: packages.NeedName | packages.NeedTypes}
		dpkgs, err := packages.Load(exp, deps...)
		if err != nil {
			depsErr = fmt.Errorf("loading the dependencies of %s: %w", strings.Join(patterns, " "), err)
			return
		}
		for _, d := range dpkgs {
			if d.Types != nil {
				byPath[d.PkgPath] = d.Types
			}
		}
	}()
	fset := token.NewFileSet()
	out := make([]*loadedPackage, 0, len(roots))
	for _, r := range roots {
		out = append(out, parse(fset, r))
	}
	<-done
	if depsErr != nil {
		return nil, depsErr
	}
	for i, r := range roots {
		check(out[i], r, byPath)
	}
	return out, nil
}

// parse reads one listed package's files.
func parse(fset *token.FileSet, r *packages.Package) *loadedPackage {
	lp := &loadedPackage{Name: r.Name, PkgPath: r.PkgPath, Dir: r.Dir, Fset: fset}
	for _, e := range r.Errors {
		lp.Errors = append(lp.Errors, packageError(e))
	}
	for _, name := range r.GoFiles {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if list, ok := err.(scanner.ErrorList); ok {
			for _, e := range list {
				lp.Errors = append(lp.Errors, &Error{Pos: e.Pos, Msg: e.Msg})
			}
		} else if err != nil {
			lp.Errors = append(lp.Errors, err)
		}
		if f != nil {
			lp.Syntax = append(lp.Syntax, f)
		}
	}
	return lp
}

// check type-checks one parsed package against its dependencies' types.
func check(lp *loadedPackage, r *packages.Package, byPath map[string]*types.Package) {
	conf := types.Config{
		Importer: importerFunc(func(path string) (*types.Package, error) {
			if imp, ok := r.Imports[path]; ok {
				path = imp.PkgPath
			}
			if p := byPath[path]; p != nil {
				return p, nil
			}
			return nil, fmt.Errorf("could not import %s", path)
		}),
		Sizes: types.SizesFor("gc", runtime.GOARCH),
		Error: func(err error) {
			if te, ok := err.(types.Error); ok {
				lp.TypeErrors = append(lp.TypeErrors, te)
			}
		},
	}
	if r.Module != nil && r.Module.GoVersion != "" {
		conf.GoVersion = "go" + r.Module.GoVersion
	}
	lp.Types, _ = conf.Check(r.PkgPath, lp.Fset, lp.Syntax, nil)
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
