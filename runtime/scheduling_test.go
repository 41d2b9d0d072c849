package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// wide: n independent roots and one asset that needs them all.
func widePipeline(name string, n int, fanInCalls *atomic.Int64) *Pipeline {
	assets := make([]AssetDef, 0, n+1)
	deps := make([]Dep, 0, n)
	for i := range n {
		key := fmt.Sprintf("leaf_%04d", i)
		assets = append(assets, def(key, func(ctx context.Context, in *Inputs) (any, error) { return i, nil }))
		deps = append(deps, on(key))
	}
	assets = append(assets, def("sum", func(ctx context.Context, in *Inputs) (any, error) {
		fanInCalls.Add(1)
		total := 0
		for _, d := range deps {
			v, err := Input[int](ctx, in, d.Asset)
			if err != nil {
				return nil, err
			}
			total += v
		}
		return total, nil
	}, deps...))
	return NewPipeline(PipelineDef{Name: name, Assets: assets})
}

func TestFanInRunsExactlyOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var calls atomic.Int64
		const n = 60
		p := widePipeline("wide", n, &calls)
		cfg := db.config(t)
		cfg.Concurrency = 16
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(context.Background(), p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || calls.Load() != 1 {
			t.Fatalf("run %s, fan-in ran %d times", res.Status, calls.Load())
		}
		sum, err := Load[int](context.Background(), e, "wide", "sum", "")
		if err != nil || sum != n*(n-1)/2 {
			t.Fatalf("sum = %d, %v", sum, err)
		}
		m, _ := e.MaterializationByID(context.Background(), res.Assets["sum"].Materialization)
		if len(m.Upstream) != n {
			t.Errorf("sum's lineage has %d upstreams, want %d", len(m.Upstream), n)
		}
	})
}

func TestTwoEnginesDoNotInterfere(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		var wg sync.WaitGroup
		results := make([]RunResult, 2)
		calls := make([]atomic.Int64, 2)
		for i := range 2 {
			p := chainPipeline("chain", &calls[i])
			e := openEngine(t, db.config(t), Bind(p, nil))
			wg.Add(1)
			go func() {
				defer wg.Done()
				run, err := e.Materialize(context.Background(), p, Request{})
				if err != nil {
					t.Error(err)
					return
				}
				results[i] = waitRun(t, e, run.ID)
			}()
		}
		wg.Wait()
		for i, r := range results {
			if r.Status != RunSucceeded || calls[i].Load() != 3 {
				t.Errorf("engine %d: %s with %d calls; want succeeded with 3 (nothing reused across engines)", i, r.Status, calls[i].Load())
			}
		}
	})
}

func TestBindRefusesNilResources(t *testing.T) {
	t.Parallel()
	type resources struct {
		DB     *strings.Builder
		Client interface{ Do() }
		Name   string
	}
	p := NewPipeline(PipelineDef{Name: "res", Resources: ResourcesOf[resources](), Assets: []AssetDef{
		def("a", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }),
	}})
	_, err := Open(context.Background(), Config{Database: "sqlite::memory:"}, Bind(p, resources{Name: "x"}))
	if !errors.Is(err, ErrMissingResource) || !strings.Contains(err.Error(), "DB, Client") {
		t.Fatalf("err = %v; want ErrMissingResource naming DB, Client", err)
	}
	_, err = Open(context.Background(), Config{Database: "sqlite::memory:"}, Bind(p, 42))
	if err == nil || !strings.Contains(err.Error(), "want runtime.resources") {
		t.Fatalf("wrong type: %v", err)
	}
	_, err = Open(context.Background(), Config{Database: "sqlite::memory:"},
		Bind(p, resources{DB: &strings.Builder{}, Client: nil}), Bind(p, nil))
	if err == nil || !strings.Contains(err.Error(), `two pipelines named "res"`) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestPartitionValidation(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		days := flowstone.Daily("2024-01-01")
		a := def("daily", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
		a.Partitions = days
		b := def("global", func(ctx context.Context, in *Inputs) (any, error) { return "g", nil })
		c := def("uses_both", func(ctx context.Context, in *Inputs) (any, error) {
			d, err := Input[string](ctx, in, "daily")
			if err != nil {
				return nil, err
			}
			g, err := Input[string](ctx, in, "global")
			return d + "/" + g, err
		}, on("daily"), on("global"))
		c.Partitions = days
		p := NewPipeline(PipelineDef{Name: "parts", Assets: []AssetDef{a, b, c}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		ctx := context.Background()
		for _, bad := range []flowstone.Partition{"", "2023-12-31", "2024-1-2", "yesterday"} {
			_, err := e.Materialize(ctx, p, Request{Partition: bad})
			if !errors.Is(err, flowstone.ErrInvalidPartition) || !strings.Contains(err.Error(), "2024-01-01") {
				t.Errorf("partition %q: %v; want ErrInvalidPartition with an example", bad, err)
			}
		}
		run, err := e.Materialize(ctx, p, Request{Partition: "2024-03-05"})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded || res.Assets["global"].Partition != "" || res.Assets["daily"].Partition != "2024-03-05" {
			t.Fatalf("run: %s %+v", res.Status, res.Assets)
		}
		v, err := Load[string](ctx, e, "parts", "uses_both", "2024-03-05")
		if err != nil || v != "2024-03-05/g" {
			t.Fatalf("uses_both = %q, %v", v, err)
		}
	})
}

func TestStoredValueThatNoLongerDecodes(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		p := NewPipeline(PipelineDef{Name: "evolve", Assets: []AssetDef{
			def("report", func(ctx context.Context, in *Inputs) (any, error) {
				return map[string]any{"rows": 3, "title": "x"}, nil
			}),
		}})
		e := openEngine(t, cfg, Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		waitRun(t, e, run.ID)
		type reportV2 struct {
			Rows int `json:"rows"`
		} // "title" was removed from the type
		_, err := Load[reportV2](ctx, e, "evolve", "report", "")
		if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), "asset report") || !strings.Contains(err.Error(), "mat_") {
			t.Fatalf("err = %v; want ErrDecode naming asset and materialization", err)
		}
		if _, err := Load[int](ctx, e, "evolve", "missing", ""); !errors.Is(err, ErrUnknownAsset) {
			t.Fatalf("unknown asset: %v", err)
		}
	})
}

func TestCancelStopsARun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		started := make(chan struct{}, 1)
		var afterRan atomic.Bool
		p := NewPipeline(PipelineDef{Name: "cancel", Assets: []AssetDef{
			def("slow", func(ctx context.Context, in *Inputs) (any, error) {
				started <- struct{}{}
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(20 * time.Second):
					return 1, nil
				}
			}),
			def("after", func(ctx context.Context, in *Inputs) (any, error) { afterRan.Store(true); return 2, nil }, on("slow")),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		<-started
		if err := e.Cancel(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunCancelled || res.Assets["slow"].Status != StatusCancelled || res.Assets["after"].Status != StatusCancelled {
			t.Fatalf("after cancel: %s %+v", res.Status, res.Assets)
		}
		time.Sleep(300 * time.Millisecond)
		if afterRan.Load() {
			t.Fatal("a dependent ran after cancel")
		}
		if err := e.Cancel(ctx, "run_nope"); !errors.Is(err, ErrRunNotFound) {
			t.Fatalf("cancel unknown: %v", err)
		}
	})
}

func TestMetadataEventsAndFileIO(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		dir := t.TempDir()
		big := def("big", func(ctx context.Context, in *Inputs) (any, error) {
			flowstone.AddMetadata(ctx, "rows", 2)
			flowstone.Logger(ctx).Info("writing big")
			return []string{"a", "b"}, nil
		})
		big.IO = FileIO{Dir: dir}
		p := NewPipeline(PipelineDef{Name: "io", Assets: []AssetDef{
			big,
			def("count", func(ctx context.Context, in *Inputs) (any, error) {
				v, err := Input[[]string](ctx, in, "big")
				return len(v), err
			}, on("big")),
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		events, stop := e.Subscribe(0)
		defer stop()
		run, _ := e.Materialize(ctx, p, Request{})
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s %+v", res.Status, res.Assets)
		}
		if n, err := Load[int](ctx, e, "io", "count", ""); err != nil || n != 2 {
			t.Fatalf("count = %d, %v", n, err)
		}
		if v, err := Load[[]string](ctx, e, "io", "big", ""); err != nil || len(v) != 2 {
			t.Fatalf("big via FileIO = %v, %v", v, err)
		}
		m, _ := e.MaterializationByID(ctx, res.Assets["big"].Materialization)
		if m.Metadata["rows"] != float64(2) {
			t.Errorf("metadata = %v", m.Metadata)
		}
		seen := map[EventKind]int{}
		deadline := time.After(5 * time.Second)
		for seen[EventRunFinished] == 0 {
			select {
			case ev := <-events:
				if ev.RunID == run.ID {
					seen[ev.Kind]++
				}
			case <-deadline:
				t.Fatalf("events seen: %v", seen)
			}
		}
		if seen[EventRunStarted] != 1 || seen[EventAssetStarted] != 2 || seen[EventAssetFinished] != 2 {
			t.Errorf("events = %v", seen)
		}
	})
}

func TestJobForAnAssetThisProcessDoesNotKnow(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		var ran atomic.Bool
		v1 := NewPipeline(PipelineDef{Name: "versions", Assets: []AssetDef{
			def("old", func(ctx context.Context, in *Inputs) (any, error) { ran.Store(true); return 1, nil }),
		}})
		v2 := NewPipeline(PipelineDef{Name: "versions", Assets: []AssetDef{
			def("old", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil }),
			def("brand_new", func(ctx context.Context, in *Inputs) (any, error) { return 2, nil }),
		}})
		e := openEngine(t, cfg, Bind(v1, nil)) // a worker still on v1
		run, err := e.Materialize(ctx, v2, Request{Targets: []string{"brand_new"}})
		if err != nil {
			t.Fatal(err)
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunFailed || !strings.Contains(res.Assets["brand_new"].Error, `"brand_new" is not in pipeline versions`) {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
	})
}

func TestValueThatDoesNotEncodeFailsClearly(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		a := def("handle", func(ctx context.Context, in *Inputs) (any, error) { return func() {}, nil })
		a.Retries = 3
		p := NewPipeline(PipelineDef{Name: "enc", Assets: []AssetDef{a}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		res := waitRun(t, e, run.ID)
		got := res.Assets["handle"]
		if got.Status != StatusFailed || got.Attempts != 1 || !strings.Contains(got.Error, "value of type func() does not encode as JSON") {
			t.Fatalf("handle: %+v", got)
		}
	})
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		cfg := db.config(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := cfg
				c.NoWorkers = true
				e, err := Open(context.Background(), fastConfig(c))
				if err == nil {
					_ = e.Close(context.Background())
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("open %d: %v", i, err)
			}
		}
	})
}
