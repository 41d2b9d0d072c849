package gen

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// staleProgram is a pipeline with a main that materializes it on the
// SQLite file named by its argument and prints the asset's status and
// value, or the error Open returned.
const staleProgram = `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/flowstone-go/flowstone/runtime"
)

// Answer is the value under test.
//
//flowstone:asset retries=1
func Answer(ctx context.Context) (int, error) {
	return 1, nil
}

func main() {
	ctx := context.Background()
	eng, err := runtime.Open(ctx, runtime.Config{Database: "sqlite://" + os.Args[1]}, runtime.Bind(Pipeline(), Resources{}))
	if err != nil {
		fmt.Println(err)
		os.Exit(2)
	}
	defer eng.Close(ctx)
	run, err := eng.Materialize(ctx, Pipeline(), runtime.Request{})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	res, err := eng.Wait(ctx, run.ID)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	v, err := LoadAnswer(ctx, eng, "")
	fmt.Println(res.Assets[AssetAnswer].Status, v, err)
}
`

// TestEditedCodeIsNeverReused builds a binary, materializes, edits the
// asset's body (then its options) and rebuilds without go generate: the
// binary refuses to open rather than serve the old result. After go
// generate the asset is computed again.
func TestEditedCodeIsNeverReused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds binaries")
	}
	dir, err := os.MkdirTemp(goldenDir, ".tmp-stale-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if dir, err = filepath.Abs(dir); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "main.go")
	db := filepath.Join(t.TempDir(), "flowstone.db")
	writeFile(t, src, []byte(staleProgram))
	generate := func() {
		t.Helper()
		files, errs := Generate(context.Background(), dir, nil)
		if len(errs) > 0 {
			t.Fatalf("Generate: %v", errs)
		}
		if err := Commit(files); err != nil {
			t.Fatal(err)
		}
	}
	edit := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), from) {
			t.Fatalf("main.go has no %q", from)
		}
		writeFile(t, src, []byte(strings.Replace(string(b), from, to, 1)))
	}
	bin := filepath.Join(t.TempDir(), "answer")
	runBinary := func() (string, int) {
		t.Helper()
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = dir
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, db).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out)), code
	}
	expect := func(step, want string, wantCode int) {
		t.Helper()
		got, code := runBinary()
		if code != wantCode || !strings.Contains(got, want) {
			t.Fatalf("%s: exit %d, output %q; want exit %d and %q", step, code, got, wantCode, want)
		}
	}

	generate()
	expect("first build", "succeeded 1", 0)
	expect("same code again", "reused 1", 0)

	edit("return 1, nil", "return 2, nil")
	expect("body edited, not regenerated", "flowstone_gen.go is stale: run go generate (the code of answer changed", 2)
	generate()
	expect("body edited and regenerated", "succeeded 2", 0)

	edit("retries=1", "retries=5")
	expect("options edited, not regenerated", "flowstone_gen.go is stale", 2)
	generate()
	expect("options edited and regenerated", "succeeded 2", 0)
	expect("regenerated code again", "reused 2", 0)
}
