package gen

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// versions generates the case in dir and returns each asset's code
// version by key.
func versions(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, errs := Generate(context.Background(), dir, nil)
	if len(errs) > 0 {
		t.Fatalf("Generate: %v", errs)
	}
	out := map[string]string{}
	re := regexp.MustCompile(`Key:\s+Asset(\w+),[\s\S]*?CodeVersion:\s+"([^"]+)"`)
	for _, m := range re.FindAllStringSubmatch(string(files[0].Content), -1) {
		out[m[1]] = m[2]
	}
	if len(out) == 0 {
		t.Fatal("no code versions in the generated file")
	}
	return out
}

func TestCodeVersion(t *testing.T) {
	t.Parallel()
	dir := tempCase(t, "Basic")
	src := filepath.Join(dir, "basic.go")
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	base := versions(t, dir)

	edit := func(t *testing.T, from, to string) map[string]string {
		t.Helper()
		s := string(orig)
		if !strings.Contains(s, from) {
			t.Fatalf("basic.go has no %q", from)
		}
		writeFile(t, src, []byte(strings.Replace(s, from, to, 1)))
		return versions(t, dir)
	}

	// Edits that leave every version alone: comments, blank lines, the
	// doc text, other declarations, moving code around.
	for _, c := range []struct{ name, from, to string }{
		{"doc text", "// DailyRevenue sums the cleaned orders of one day.", "// DailyRevenue adds up a day."},
		{"comment in body", "\treturn Revenue{}, nil\n", "\t// Nothing yet.\n\n\treturn Revenue{}, nil // zero\n"},
		{"other declaration", "type FXClient struct{}", "type FXClient struct{ Rate float64 }\n\nfunc helper() int { return 1 }"},
		{"moved down", "type Order struct{ Amount float64 }", "\n\n\ntype Order struct{ Amount float64 }"},
		{"option order", "partitions=Days retries=3 timeout=5m", "timeout=5m retries=3 partitions=Days"},
		{"formatting", "return Revenue{}, nil", "return Revenue{  }, nil"},
	} {
		got := edit(t, c.from, c.to)
		for k, v := range base {
			if got[k] != v {
				t.Errorf("%s: version of %s changed", c.name, k)
			}
		}
	}

	// Edits to an asset's own body or directive change its version only.
	for _, c := range []struct{ name, from, to, asset string }{
		{"body", "return Revenue{}, nil", "return Revenue{Total: 1}, nil", "DailyRevenue"},
		{"directive", "partitions=Days retries=3 timeout=5m", "partitions=Days retries=4 timeout=5m", "DailyRevenue"},
		{"signature", "func Publish(ctx context.Context) error", "func Publish(_ context.Context) error", "Publish"},
	} {
		got := edit(t, c.from, c.to)
		for k, v := range base {
			if changed := got[k] != v; changed != (k == c.asset) {
				t.Errorf("%s: version of %s changed=%v", c.name, k, changed)
			}
		}
	}
}
