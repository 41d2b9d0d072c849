package gen

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGuessDeps checks the guess that lets both go list runs start at
// once: the imports of a directory's files, and no guess for patterns
// that are not directories.
func TestGuessDeps(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs(filepath.Join(goldenDir, "Types"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"context", "github.com/flowstone-go/flowstone", "math/big", "time"}
	for _, pats := range [][]string{{"."}, {dir}} {
		if diff := cmp.Diff(want, guessDeps(dir, pats)); diff != "" {
			t.Errorf("guessDeps(%q) (-want +got):\n%s", pats, diff)
		}
	}
	for _, pats := range [][]string{{"./..."}, {"github.com/flowstone-go/flowstone"}, {".", "std"}} {
		if got := guessDeps(dir, pats); got != nil {
			t.Errorf("guessDeps(%q) = %q, want no guess", pats, got)
		}
	}
}

// TestLoadWithoutGuess loads a package whose dependencies cannot be
// guessed (an import-path pattern), so the second go list runs after the
// first, and checks that a guessed load covers only what it was asked for
// (a miss runs the second list again).
func TestLoadWithoutGuess(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs(filepath.Join(goldenDir, "Types"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := load(context.Background(), dir, []string{"github.com/flowstone-go/flowstone/testdata/Types"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].Types == nil || len(pkgs[0].TypeErrors) > 0 {
		t.Fatalf("load by import path: %d packages, type errors %v", len(pkgs), pkgs[0].TypeErrors)
	}
	if dl := loadDeps(context.Background(), dir, []string{"context"}); dl.covers([]string{"context", "time"}) {
		t.Error("a load of context covers time")
	} else {
		dl.cancel()
		<-dl.done
	}
}
