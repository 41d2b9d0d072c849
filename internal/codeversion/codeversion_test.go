package codeversion

import (
	"strings"
	"testing"
)

const base = `package p

import "context"

type T struct{}

func (T) M() { _ = func() {} }

var f = func() int { return 1 }

// A adds one.
//
//flowstone:asset retries=3 schedule="0 6 * * *"
func A(ctx context.Context, b int) (int, error) {
	return b + 1, nil
}

//flowstone:asset
func B(ctx context.Context) (struct {
	N int
}, error) {
	return struct{ N int }{}, nil
}
`

func TestFuncs(t *testing.T) {
	t.Parallel()
	orig := Funcs([]byte(base))
	if len(orig) != 2 || orig["A"] == "" || orig["B"] == "" {
		t.Fatalf("Funcs = %v, want versions of A and B only", orig)
	}
	same := []struct{ name, from, to string }{
		{"doc text", "// A adds one.", "// A increments."},
		{"comment in body", "\treturn b + 1, nil\n", "\t// One more.\n\n\treturn b + 1, nil // done\n"},
		{"layout", "return b + 1, nil", "return b+1,   nil"},
		{"option order", `retries=3 schedule="0 6 * * *"`, `schedule="0 6 * * *"  retries=3`},
		{"other code", "type T struct{}", "type T struct{ X int }"},
	}
	for _, c := range same {
		got := Funcs([]byte(strings.Replace(base, c.from, c.to, 1)))
		if got["A"] != orig["A"] || got["B"] != orig["B"] {
			t.Errorf("%s changed a version", c.name)
		}
	}
	changed := []struct{ name, from, to string }{
		{"body", "return b + 1, nil", "return b + 2, nil"},
		{"option", "retries=3", "retries=5"},
		{"quoted option", `"0 6 * * *"`, `"0 7 * * *"`},
		{"signature", "func A(ctx context.Context, b int)", "func A(_ context.Context, b int)"},
	}
	for _, c := range changed {
		got := Funcs([]byte(strings.Replace(base, c.from, c.to, 1)))
		if got["A"] == orig["A"] {
			t.Errorf("%s left A's version alone", c.name)
		}
		if got["B"] != orig["B"] {
			t.Errorf("%s changed B's version", c.name)
		}
	}
}
