package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/flowstone-go/flowstone/internal/codeversion"
	"github.com/flowstone-go/flowstone/strategy"
)

// sourcePipeline returns a pipeline of n assets declared in one embedded
// file, whose recorded hashes match src (before edit is applied to the
// embedded copy).
func sourcePipeline(n int, edit func(string) string) *Pipeline {
	var b strings.Builder
	b.WriteString("package p\n\nimport \"context\"\n")
	for i := range n {
		fmt.Fprintf(&b, "\n// A%d computes a value.\n//\n//flowstone:asset retries=3 timeout=5m\nfunc A%d(ctx context.Context, up []int) (int, error) {\n\ttotal := %d\n\tfor _, v := range up {\n\t\ttotal += v\n\t}\n\treturn total, nil\n}\n", i, i, i)
	}
	src := b.String()
	hashes := codeversion.Funcs([]byte(src))
	if edit != nil {
		src = edit(src)
	}
	def := PipelineDef{Name: "p", Sources: fstest.MapFS{"p.go": {Data: []byte(src)}}}
	for i := range n {
		fn := fmt.Sprintf("A%d", i)
		def.Assets = append(def.Assets, AssetDef{
			Key: fmt.Sprintf("a%d", i), Kind: "standard", Strategy: strategy.Standard{}, HasValue: true,
			CodeVersion: hashes[fn], Source: SourceRef{File: "p.go", Func: fn, Hash: hashes[fn]},
			Run: func(context.Context, *Inputs) (any, error) { return 1, nil },
		})
	}
	return NewPipeline(def)
}

func TestOpenRefusesStaleGeneratedFile(t *testing.T) {
	t.Parallel()
	if err := sourcePipeline(3, nil).checkSources(); err != nil {
		t.Fatalf("fresh pipeline: %v", err)
	}
	stale := sourcePipeline(3, func(s string) string { return strings.Replace(s, "total := 1\n", "total := 100\n", 1) })
	cfg := fastConfig(Config{Database: "sqlite://" + t.TempDir() + "/f.db", NoWorkers: true})
	eng, err := Open(context.Background(), cfg, Bind(stale, nil))
	if err == nil {
		eng.Close(context.Background())
		t.Fatal("Open accepted a pipeline whose asset code changed after generation")
	}
	if !errors.Is(err, ErrStale) || !strings.Contains(err.Error(), "flowstone_gen.go is stale: run go generate") || !strings.Contains(err.Error(), "a1") {
		t.Errorf("Open: %v; want ErrStale naming a1", err)
	}
}

// BenchmarkOpenSourceCheck measures what checking the code versions adds
// to Open at 1,000 assets: the check alone, and Open (SQLite, no
// workers) for scale.
func BenchmarkOpenSourceCheck(b *testing.B) {
	p := sourcePipeline(1000, nil)
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if err := p.checkSources(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/check")
	})
	b.Run("open", func(b *testing.B) {
		ctx := context.Background()
		dir := b.TempDir()
		i := 0
		start := time.Now()
		for b.Loop() {
			i++
			eng, err := Open(ctx, fastConfig(Config{Database: fmt.Sprintf("sqlite://%s/%d.db", dir, i), NoWorkers: true}), Bind(p, nil))
			if err != nil {
				b.Fatal(err)
			}
			eng.Close(ctx)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/float64(b.N)/1000, "ms/open")
	})
}
