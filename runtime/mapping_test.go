package runtime

import (
	"context"
	"testing"

	"github.com/flowstone-go/flowstone"
)

// hourly ingest -> daily rollup (map of the day's hours) -> cumulative
// (itself on the previous day plus the rollup), in Berlin time.
func mappingPipeline() *Pipeline {
	hours := flowstone.Hourly("2024-01-01T00", flowstone.InLocation("Europe/Berlin"))
	days := flowstone.Daily("2024-01-01", flowstone.InLocation("Europe/Berlin"))
	ingest := def("ingest", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
	ingest.Partitions = hours
	rollup := def("rollup", func(ctx context.Context, in *Inputs) (any, error) {
		hs, err := InputPartitions[int](ctx, in, "ingest")
		if err != nil {
			return nil, err
		}
		n := 0
		for _, v := range hs {
			n += v
		}
		return n, nil
	}, Dep{Asset: "ingest", Kind: DepPartitions})
	rollup.Partitions = days
	cumulative := def("cumulative", func(ctx context.Context, in *Inputs) (any, error) {
		today, err := Input[int](ctx, in, "rollup")
		if err != nil {
			return nil, err
		}
		prev, err := InputPrevious[int](ctx, in)
		if err != nil {
			return nil, err
		}
		return prev.Value + today, nil
	}, on("rollup"), Dep{Asset: "cumulative", Kind: DepPrevious})
	cumulative.Partitions = days
	return NewPipeline(PipelineDef{Name: "mapping", Assets: []AssetDef{ingest, rollup, cumulative}})
}

func TestDailyOverHourlyAcrossDST(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := mappingPipeline()
		cfg := db.config(t)
		cfg.Concurrency = 8
		e := openEngine(t, cfg, Bind(p, nil))
		for _, c := range []struct {
			day              flowstone.Partition
			hours, cumulated int
		}{
			{"2024-03-31", 23, 23}, // spring forward; no previous day yet
			{"2024-04-01", 24, 47}, // reads 2024-03-31 as its Previous
			{"2024-10-27", 24, 24}, // fall back: the repeated hour has one key; 2024-10-26 never ran
		} {
			run, err := e.Materialize(ctx, p, Request{Targets: []string{"cumulative"}, Partition: c.day})
			if err != nil {
				t.Fatal(err)
			}
			res := waitRun(t, e, run.ID)
			if res.Status != RunSucceeded || len(res.ByPartition["ingest"]) != c.hours {
				t.Fatalf("%s: run %s with %d ingest partitions; want %d", c.day, res.Status, len(res.ByPartition["ingest"]), c.hours)
			}
			if _, ok := res.ByPartition["ingest"][flowstone.Partition(string(c.day)+"T00")]; !ok {
				t.Fatalf("%s: no ingest at local midnight: %v", c.day, res.ByPartition["ingest"])
			}
			if v, err := Load[int](ctx, e, "mapping", "rollup", c.day); err != nil || v != c.hours {
				t.Errorf("%s: rollup = %d, %v; want %d", c.day, v, err, c.hours)
			}
			if v, err := Load[int](ctx, e, "mapping", "cumulative", c.day); err != nil || v != c.cumulated {
				t.Errorf("%s: cumulative = %d, %v; want %d", c.day, v, err, c.cumulated)
			}
			m, _ := e.MaterializationByID(ctx, res.Assets["rollup"].Materialization)
			if len(m.Upstream) != c.hours {
				t.Errorf("%s: rollup's lineage records %d hours; want %d", c.day, len(m.Upstream), c.hours)
			}
		}
		// A daily key on the hourly asset itself is refused with an example.
		if _, err := e.Materialize(ctx, p, Request{Targets: []string{"ingest"}, Partition: "2024-03-31"}); err == nil {
			t.Fatal("an hourly asset accepted a daily key")
		}
	})
}
