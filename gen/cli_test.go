package gen

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tempCase copies a golden case's input into a fresh folder inside the
// module (so its imports resolve) and returns the folder.
func tempCase(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp(goldenDir, ".tmp-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	files, err := filepath.Glob(filepath.Join(goldenDir, name, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, filepath.Base(f)), b)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Do(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDoWritesAndChecks(t *testing.T) {
	t.Parallel()
	dir := tempCase(t, "Basic")
	genPath := filepath.Join(dir, GenFileName)

	if code, _, stderr := run("-C", dir, "-check"); code != 1 || !strings.Contains(stderr, "./flowstone_gen.go is stale") {
		t.Fatalf("-check without a generated file: exit %d, stderr %q; want 1 and a stale notice", code, stderr)
	}
	if _, err := os.Stat(genPath); err == nil {
		t.Fatal("-check wrote the generated file")
	}
	if code, stdout, stderr := run("-C", dir); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("generate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	first, err := os.ReadFile(genPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(goldenDir, "Basic", "want", GenFileName))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, want) {
		t.Error("the CLI's output differs from the golden file")
	}
	if code, _, stderr := run("-C", dir, "-check"); code != 0 {
		t.Fatalf("-check after generating: exit %d, stderr %q", code, stderr)
	}
	// Regenerating with the generated file present (it now takes part in
	// type-checking) gives the same bytes.
	if code, _, stderr := run("-C", dir, "."); code != 0 {
		t.Fatalf("regenerate: exit %d, stderr %q", code, stderr)
	}
	if again, _ := os.ReadFile(genPath); !bytes.Equal(first, again) {
		t.Error("regenerating changed the file")
	}

	// A signature edit makes the file stale, and the stale file (whose
	// guard no longer compiles) does not stop regeneration.
	src := filepath.Join(dir, "basic.go")
	b, _ := os.ReadFile(src)
	edited := strings.Replace(string(b), "func Publish(ctx context.Context) error", "func Publish(ctx context.Context, p flowstone.Partition) error", 1)
	writeFile(t, src, []byte(edited))
	if code, _, stderr := run("-C", dir, "-check"); code != 1 || !strings.Contains(stderr, "stale") {
		t.Fatalf("-check after an edit: exit %d, stderr %q; want 1 and a stale notice", code, stderr)
	}
	if code, _, stderr := run("-C", dir); code != 0 {
		t.Fatalf("regenerate after an edit: exit %d, stderr %q", code, stderr)
	}
}

func TestDoErrors(t *testing.T) {
	t.Parallel()
	dir := tempCase(t, "Dependencies")
	code, stdout, stderr := run("-C", dir)
	if code != 1 || stdout != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and no output", code, stdout)
	}
	want, err := os.ReadFile(filepath.Join(goldenDir, "Dependencies", "want", "errors.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if stderr != string(want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, GenFileName)); err == nil {
		t.Error("a file was written despite errors")
	}
}

func TestDoUsage(t *testing.T) {
	t.Parallel()
	if code, _, stderr := run("-nope"); code != 2 || !strings.Contains(stderr, "usage: flowstonegen") {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := run("-C", filepath.Join(t.TempDir(), "missing")); code != 2 {
		t.Errorf("missing -C dir: exit %d, want 2", code)
	}
	if code, _, _ := run("-h"); code != 0 {
		t.Errorf("-h: exit %d, want 0", code)
	}
}
