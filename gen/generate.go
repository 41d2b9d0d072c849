// Package gen is flowstonegen as a library: it loads annotated packages,
// parses their //flowstone: directives, analyses the asset graph and emits
// flowstone_gen.go. Generate works in memory and returns every positioned
// error at once; Commit writes the files.
//
// The stages live in their own files: parse.go (loading, directives,
// options), analyze.go (keys, kinds, parameters, references, cycles),
// emit.go (the generated code) and errors.go (positions and messages);
// sensor.go holds what is particular to //flowstone:sensor.
package gen

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is one generated file.
type File struct {
	// Path is the absolute path the file belongs at.
	Path    string
	Content []byte
}

// Generate loads the packages matching patterns (relative to dir; "." when
// empty), and returns the flowstone_gen.go of every package holding
// flowstone directives. On any error it returns no files and all errors,
// sorted by position; positioned ones are *Error.
func Generate(ctx context.Context, dir string, patterns []string) ([]File, []error) {
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	table, err := newOptionTable()
	if err != nil {
		return nil, []error{err}
	}
	pkgs, err := load(ctx, dir, patterns)
	if err != nil {
		return nil, []error{err}
	}
	var files []File
	var all []error
	found := false
	for _, pkg := range pkgs {
		errs := &errorList{fset: pkg.Fset}
		p := parsePackage(pkg, table, errs)
		if !p.directives {
			all = append(all, errs.errs...)
			continue
		}
		found = true
		if len(p.assets) > 0 || len(errs.errs) == 0 {
			analyse(p, table, errs)
		}
		if len(p.assets) == 0 && len(errs.errs) == 0 {
			errs.add(fmt.Errorf(msgNoAssets, pkg.PkgPath))
		}
		if len(errs.errs) > 0 {
			all = append(all, errs.errs...)
			continue
		}
		content, err := emit(p)
		if err != nil {
			all = append(all, err)
			continue
		}
		files = append(files, File{Path: filepath.Join(p.dir, GenFileName), Content: content})
	}
	if len(all) == 0 && !found {
		all = append(all, fmt.Errorf(msgNoAssets, strings.Join(patterns, " ")))
	}
	if len(all) > 0 {
		return nil, sortErrors(all)
	}
	return files, nil
}

// Commit writes files, skipping those whose content on disk is already
// identical. Each file is written to a temporary file and renamed, so a
// reader never sees half of one.
func Commit(files []File) error {
	for _, f := range files {
		if old, err := os.ReadFile(f.Path); err == nil && bytes.Equal(old, f.Content) {
			continue
		}
		tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".flowstone_gen-*.go")
		if err != nil {
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		_, werr := tmp.Write(f.Content)
		cerr := tmp.Close()
		if err := cmpErr(werr, cerr); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if err := os.Chmod(tmp.Name(), 0o644); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
		if err := os.Rename(tmp.Name(), f.Path); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("writing %s: %w", f.Path, err)
		}
	}
	return nil
}

func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Stale returns the files whose content on disk differs from the
// generated content (missing files included).
func Stale(files []File) []File {
	var out []File
	for _, f := range files {
		if old, err := os.ReadFile(f.Path); err != nil || !bytes.Equal(old, f.Content) {
			out = append(out, f)
		}
	}
	return out
}
