package gen

import (
	"context"
	"fmt"
	"go/format"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmitIsGofmtd checks that the generated files are exactly what gofmt
// prints: the emitter writes gofmt's layout itself rather than running
// go/format over the file (see emitter).
func TestEmitIsGofmtd(t *testing.T) {
	t.Parallel()
	dirs := map[string]string{"synthetic": synthesize(t, 250)}
	for _, name := range goldenCases(t) {
		dir, err := filepath.Abs(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		dirs[name] = dir
	}
	for name, dir := range dirs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files, errs := Generate(context.Background(), dir, nil)
			if len(errs) > 0 {
				return // an error case
			}
			for _, f := range files {
				want, err := format.Source(f.Content)
				if err != nil {
					t.Fatalf("generated file does not parse: %v", err)
				}
				if diff := cmp.Diff(string(want), string(f.Content)); diff != "" {
					t.Errorf("generated file is not gofmt'd (-gofmt +generated):\n%s", diff)
				}
			}
		})
	}
}

// TestWriteFieldsAlignsAsGofmt checks writeFields against go/format on
// key sets that exercise gofmt's alignment sections: multi-line values,
// and keys longer than 40 runes whose length ratio breaks the alignment.
func TestWriteFieldsAlignsAsGofmt(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return "K" + strings.Repeat("x", n-1) }
	cases := map[string][]field{
		"short":     {{"A", "1"}, {"Bbbbbbb", "2"}, {"Cc", "3"}},
		"multiline": {{"A", "1"}, {"Bbbb", "T{\n\t\tX: 1,\n\t}"}, {"Cc", "3"}, {"Ddddddd", "4"}},
		"long":      {{"A", "1"}, {long(45), "2"}, {"B", "3"}, {long(41), "4"}, {long(120), "5"}, {long(50), "6"}},
		"ratio":     {{long(41), "1"}, {long(42), "2"}, {long(110), "3"}, {long(44), "4"}, {"é", "5"}},
		"one":       {{"Only", "1"}},
	}
	// And random ones, from a fixed seed.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		fields := make([]field, 1+rng.IntN(12))
		for j := range fields {
			fields[j] = field{long(1 + rng.IntN(130)), "1"}
			if rng.IntN(6) == 0 {
				fields[j].value = "T{\n\t\tX: 1,\n\t}"
			}
		}
		cases[fmt.Sprintf("random%d", i)] = fields
	}
	for name, fields := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			b.WriteString("package p\n\nvar _ = T{\n")
			writeFields(&b, 1, fields)
			b.WriteString("}\n")
			want, err := format.Source([]byte(b.String()))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), b.String()); diff != "" {
				t.Errorf("writeFields differs from gofmt (-gofmt +writeFields):\n%s", diff)
			}
		})
	}
}
