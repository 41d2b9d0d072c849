package gen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synthesize writes a package of n assets into a fresh folder inside the
// module: chains with fan-ins (every asset reads its predecessor, every
// tenth also the asset ten back), a partition set, a config type, two
// resources and an error-only asset per hundred with deps=.
func synthesize(tb testing.TB, n int) string {
	tb.Helper()
	dir, err := os.MkdirTemp(goldenDir, fmt.Sprintf(".bench-%d-", n))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	const perFile = 100
	writeFile := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	writeFile("doc.go", `// Package synth is a synthetic pipeline for benchmarks.
package synth

import "github.com/flowstone-go/flowstone"

// Days partitions every asset.
var Days = flowstone.Daily("2024-01-01")

// Settings is the run config.
//
//flowstone:config
type Settings struct{ Factor int }

// V is every asset's value.
type V struct{ N int }

// DB and Cache are resources.
type (
	DB    struct{}
	Cache struct{}
)
`)
	name := func(i int) string { return fmt.Sprintf("A%05d", i) }
	param := func(i int) string { return fmt.Sprintf("a%05d", i) }
	for f := 0; f*perFile < n; f++ {
		var b strings.Builder
		b.WriteString("package synth\n\nimport (\n\t\"context\"\n\n\t\"github.com/flowstone-go/flowstone\"\n)\n")
		for i := f * perFile; i < min(n, (f+1)*perFile); i++ {
			var params []string
			sum := "0"
			if i > 0 {
				prev := i - 1
				if prev%100 == 99 {
					prev-- // error-only: read the one before it
				}
				params = append(params, param(prev)+" V")
				sum = param(prev) + ".N"
			}
			if i >= 20 && i%10 == 0 {
				params = append(params, param(i-10)+" V")
				sum += " + " + param(i-10) + ".N"
			}
			extra := ""
			switch i % 3 {
			case 0:
				params = append(params, "db *DB")
			case 1:
				params = append(params, "cache *Cache", "cfg Settings")
				sum += " * cfg.Factor"
			}
			if i%100 == 99 {
				fmt.Fprintf(&b, "\n// %s reports.\n//\n//flowstone:asset partitions=Days deps=%s\nfunc %s(ctx context.Context, p flowstone.Partition) error { return nil }\n",
					name(i), strings.ToLower(name(i-1)), name(i))
				continue
			}
			if i%7 == 0 {
				extra = " retries=3 timeout=5m"
			}
			fmt.Fprintf(&b, "\n// %s computes step %d.\n//\n//flowstone:asset partitions=Days%s\nfunc %s(ctx context.Context, p flowstone.Partition, %s) (V, error) {\n\treturn V{N: %s + 1}, nil\n}\n",
				name(i), i, extra, name(i), strings.Join(params, ", "), sum)
		}
		writeFile(fmt.Sprintf("assets%03d.go", f), b.String())
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return abs
}

// BenchmarkGenerate measures flowstonegen as a process (what go generate
// runs) on synthetic packages of 100, 1,000 and 5,000 assets, next to go
// vet on the same package without its generated file and with it: both
// type-check the package, so vet is the floor a generator can be compared
// with on a noisy machine. It reports each time and the two ratios.
func BenchmarkGenerate(b *testing.B) {
	if _, err := exec.LookPath("go"); err != nil {
		b.Skip("no go command")
	}
	bin := filepath.Join(b.TempDir(), "flowstonegen")
	build := exec.Command("go", "build", "-o", bin, "../cmd/flowstonegen")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("building flowstonegen: %v\n%s", err, out)
	}
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("assets=%d", n), func(b *testing.B) {
			dir := synthesize(b, n)
			genFile := filepath.Join(dir, GenFileName)
			timed := func(name string, args ...string) time.Duration {
				// Touching a file defeats go vet's result cache, as an edit
				// before go generate would.
				touch := filepath.Join(dir, "doc.go")
				src, err := os.ReadFile(touch)
				if err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(touch, append(src, fmt.Sprintf("\n// %d\n", time.Now().UnixNano())...), 0o644); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				cmd := exec.Command(name, args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("%s: %v\n%s", name, err, out)
				}
				return time.Since(start)
			}
			// Warm the build cache for every tool, and check the package.
			timed(bin)
			timed("go", "vet", ".")
			var genTime, vetWithout, vetWith time.Duration
			runs := 0
			for b.Loop() {
				if err := os.Remove(genFile); err != nil {
					b.Fatal(err)
				}
				vetWithout += timed("go", "vet", ".")
				genTime += timed(bin)
				vetWith += timed("go", "vet", ".")
				runs++
			}
			ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(runs) }
			b.ReportMetric(ms(genTime), "gen-ms/op")
			b.ReportMetric(ms(vetWithout), "vet-without-ms/op")
			b.ReportMetric(ms(vetWith), "vet-with-ms/op")
			b.ReportMetric(float64(genTime)/float64(vetWithout), "gen/vet-without")
			b.ReportMetric(float64(genTime)/float64(vetWith), "gen/vet-with")
		})
	}
}
