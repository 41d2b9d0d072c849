package enrich_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowstone-go/flowstone/gen"
)

// Found while writing this example: an asset function whose name is also
// declared as a type (the package does not compile) was silently left out
// of the generated file, and flowstonegen exited 0. It should report the
// package's type error, or at least not drop the asset.
func TestGenerateDoesNotDropAnAssetWhosePackageFailsToTypeCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/redeclared\n\ngo 1.26\n")
	write("a.go", `package redeclared

import "context"

// Quality is also the name of an asset function below.
type Quality struct{}

//flowstone:asset
func Records(ctx context.Context) ([]int, error) { return nil, nil }

//flowstone:asset
func Quality(ctx context.Context, records []int) (int, error) { return 0, nil }
`)
	files, errs := gen.Generate(context.Background(), dir, nil)
	if len(errs) > 0 {
		return // reported: good
	}
	if len(files) != 1 {
		t.Fatalf("%d files, no errors", len(files))
	}
	t.Fatalf("no error, and the generated file lacks asset quality:\n%s", files[0].Content)
}
