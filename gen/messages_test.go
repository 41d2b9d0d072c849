package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// uncovered lists messages no golden case can print, and why.
var uncovered = map[string]string{
	// Go 1.23+ keeps aliases in types, so a parameter's type is always
	// spelled the way the source spells it; this guards GODEBUG=gotypesalias=0
	// and is checked by TestTypeProblem.
	"msgUnnameable": "unreachable with materialized aliases",
}

// TestMessagesCovered checks that every message format in errors.go is
// printed by at least one golden case.
func TestMessagesCovered(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	formats := map[string]string{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, "msg") {
					continue
				}
				v, err := strconv.Unquote(vs.Values[i].(*ast.BasicLit).Value)
				if err != nil {
					t.Fatal(err)
				}
				formats[n.Name] = v
			}
		}
	}
	if len(formats) < 20 {
		t.Fatalf("found only %d message formats in errors.go", len(formats))
	}
	var lines []string
	files, _ := filepath.Glob(filepath.Join(goldenDir, "*", "want", "errors.txt"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			// Drop the position prefix: ./file.go:12:3:
			if m := regexp.MustCompile(`^\S+\.go:\d+:\d+: `).FindString(l); m != "" {
				l = l[len(m):]
			}
			lines = append(lines, l)
		}
	}
	verb := regexp.MustCompile(`%[vsdqT]`)
	for name, format := range formats {
		if _, ok := uncovered[name]; ok {
			continue
		}
		parts := verb.Split(format, -1)
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, "(.*)") + "$")
		found := false
		for _, l := range lines {
			if re.MatchString(l) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("no golden case prints %s (%q)", name, format)
		}
	}
}
