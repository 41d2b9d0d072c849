package gen

import (
	"context"
	"go/format"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEmitIsGofmtd checks that the generated files are exactly what gofmt
// prints: the emitter formats its parts separately and joins them (see
// emitter).
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
