package gen

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"
)

// loadedPackage is one annotated package, parsed and type-checked.
type loadedPackage struct {
	Name, PkgPath, Dir string
	Fset               *token.FileSet
	Syntax             []*ast.File
	// Sources holds each file's bytes by absolute name, for the code
	// versions.
	Sources map[string][]byte
	Types   *types.Package
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
	// The dependencies' export data takes a second go list. When the
	// patterns name directories, the imports in their files are a good
	// guess at its input, so both lists run at once; a wrong guess (an
	// import the guess missed, or a failed list) costs the second list
	// again, after the first.
	var guessed *depsLoad
	guess := guessDeps(dir, patterns)
	if len(guess) > 0 {
		guess = withInterfacePackages(guess)
		guessed = loadDeps(ctx, dir, guess)
		defer guessed.cancel()
	}
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
	deps = withInterfacePackages(deps)
	dl := guessed
	if dl == nil || !dl.covers(deps) {
		dl = loadDeps(ctx, dir, deps)
		defer dl.cancel()
	}
	// Parse the packages' files while go list runs.
	fset := token.NewFileSet()
	out := make([]*loadedPackage, 0, len(roots))
	for _, r := range roots {
		out = append(out, parse(fset, r))
	}
	<-dl.done
	if dl.err != nil && dl == guessed {
		dl = loadDeps(ctx, dir, deps)
		defer dl.cancel()
		<-dl.done
	}
	if dl.err != nil {
		return nil, fmt.Errorf("loading the dependencies of %s: %w", strings.Join(patterns, " "), dl.err)
	}
	for i, r := range roots {
		check(out[i], r, dl.byPath)
	}
	return out, nil
}

// withInterfacePackages adds, sorted, the packages declaring the interfaces
// that io= and strategy= variables must implement. A variable whose type
// comes from another package (parquetio.IO) would otherwise be checked
// against that package's partial view of runtime, from its export data,
// which lacks the interface.
func withInterfacePackages(deps []string) []string {
	for _, p := range []string{runtimePath, strategyPath} {
		if !slices.Contains(deps, p) {
			deps = append(deps, p)
		}
	}
	slices.Sort(deps)
	return deps
}

// depsLoad reads the export data of some packages in the background.
type depsLoad struct {
	paths  map[string]bool
	done   chan struct{}
	cancel context.CancelFunc
	// Set before done is closed.
	byPath map[string]*types.Package
	err    error
}

// loadDeps starts reading the types of paths from export data.
func loadDeps(ctx context.Context, dir string, paths []string) *depsLoad {
	ctx, cancel := context.WithCancel(ctx)
	dl := &depsLoad{
		paths:  make(map[string]bool, len(paths)),
		done:   make(chan struct{}),
		cancel: cancel,
		byPath: map[string]*types.Package{"unsafe": types.Unsafe},
	}
	for _, p := range paths {
		dl.paths[p] = true
	}
	go func() {
		defer close(dl.done)
		if len(paths) == 0 {
			return
		}
		exp := &packages.Config{Context: ctx, Dir: dir, Mode: packages.NeedName | packages.NeedTypes}
		pkgs, err := packages.Load(exp, paths...)
		if err != nil {
			dl.err = err
			return
		}
		for _, d := range pkgs {
			if d.Types != nil {
				dl.byPath[d.PkgPath] = d.Types
			}
		}
	}()
	return dl
}

// covers reports whether the load was asked for every one of paths.
func (dl *depsLoad) covers(paths []string) bool {
	for _, p := range paths {
		if !dl.paths[p] {
			return false
		}
	}
	return true
}

// guessDeps returns the import paths of the .go files (tests aside, build
// constraints ignored) in the directories patterns name, or nil when a
// pattern is not a directory (an import path, or a ... pattern).
func guessDeps(dir string, patterns []string) []string {
	var deps []string
	seen := map[string]bool{"unsafe": true, "C": true}
	fset := token.NewFileSet()
	for _, pat := range patterns {
		if strings.Contains(pat, "...") || !(pat == "." || pat == ".." || filepath.IsAbs(pat) ||
			strings.HasPrefix(pat, "./") || strings.HasPrefix(pat, "../")) {
			return nil
		}
		pdir := pat
		if !filepath.IsAbs(pdir) {
			pdir = filepath.Join(dir, pat)
		}
		names, err := filepath.Glob(filepath.Join(pdir, "*.go"))
		if err != nil {
			return nil
		}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly|parser.SkipObjectResolution)
			if err != nil {
				return nil
			}
			for _, imp := range f.Imports {
				path, err := strconv.Unquote(imp.Path.Value)
				if err == nil && !seen[path] {
					seen[path] = true
					deps = append(deps, path)
				}
			}
		}
	}
	slices.Sort(deps)
	return deps
}

// parse reads one listed package's files.
func parse(fset *token.FileSet, r *packages.Package) *loadedPackage {
	lp := &loadedPackage{Name: r.Name, PkgPath: r.PkgPath, Dir: r.Dir, Fset: fset, Sources: map[string][]byte{}}
	for _, e := range r.Errors {
		lp.Errors = append(lp.Errors, packageError(e))
	}
	for _, name := range r.GoFiles {
		src, err := os.ReadFile(name)
		if err != nil {
			lp.Errors = append(lp.Errors, err)
			continue
		}
		lp.Sources[name] = src
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
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
