package gen

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var record = flag.Bool("record", false, "rewrite the golden files under testdata/ from the generator's output")

// goldenDir holds one folder per behaviour: an input package and
// want/flowstone_gen.go (success) or want/errors.txt (the error lines, as
// flowstonegen prints them when run in the case's folder).
const goldenDir = "../testdata"

func goldenCases(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(goldenDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != "fuzz" && !strings.HasPrefix(e.Name(), ".") {
			cases = append(cases, e.Name())
		}
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases")
	}
	return cases
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, err := filepath.Abs(filepath.Join(goldenDir, name))
			if err != nil {
				t.Fatal(err)
			}
			files, errs := Generate(context.Background(), dir, nil)
			wantGen := filepath.Join(dir, "want", GenFileName)
			wantErrs := filepath.Join(dir, "want", "errors.txt")
			if *record {
				os.RemoveAll(filepath.Join(dir, "want"))
				if err := os.MkdirAll(filepath.Join(dir, "want"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if len(errs) > 0 {
				got := scrub(errorLines(errs, dir), dir)
				if *record {
					writeFile(t, wantErrs, got)
					return
				}
				want, err := os.ReadFile(wantErrs)
				if err != nil {
					t.Fatalf("unexpected errors:\n%s", got)
				}
				if diff := cmp.Diff(string(want), string(got)); diff != "" {
					t.Errorf("errors differ (-want +got):\n%s", diff)
				}
				return
			}
			if len(files) != 1 || files[0].Path != filepath.Join(dir, GenFileName) {
				t.Fatalf("Generate returned %d files, want one %s", len(files), GenFileName)
			}
			if *record {
				writeFile(t, wantGen, files[0].Content)
				return
			}
			want, err := os.ReadFile(wantGen)
			if err != nil {
				t.Fatalf("generated a file, but the case has no want/%s: %v", GenFileName, err)
			}
			if diff := cmp.Diff(string(want), string(files[0].Content)); diff != "" {
				t.Errorf("%s differs (-want +got):\n%s", GenFileName, diff)
			}
		})
	}
}

// TestGoldenCompiles builds every success case's input together with its
// expected generated file (go build -overlay), so the golden files are
// known to compile against the current runtime.
func TestGoldenCompiles(t *testing.T) {
	t.Parallel()
	for _, name := range goldenCases(t) {
		dir, _ := filepath.Abs(filepath.Join(goldenDir, name))
		want := filepath.Join(dir, "want", GenFileName)
		if _, err := os.Stat(want); err != nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(dir, GenFileName): want}})
			if err != nil {
				t.Fatal(err)
			}
			ovFile := filepath.Join(t.TempDir(), "overlay.json")
			writeFile(t, ovFile, overlay)
			cmd := exec.Command("go", "build", "-overlay", ovFile, ".")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("go build with want/%s: %v\n%s", GenFileName, err, out)
			}
		})
	}
}

func errorLines(errs []error, dir string) []byte {
	var b bytes.Buffer
	for _, err := range errs {
		b.WriteString(FormatError(err, dir))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// scrub replaces the case's absolute directory so golden files do not
// depend on where the repository is checked out.
func scrub(b []byte, dir string) []byte {
	return bytes.ReplaceAll(b, []byte(dir), []byte("."))
}

func writeFile(t *testing.T, path string, content []byte) {
	t.Helper()
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
}
