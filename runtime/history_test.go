package runtime

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// history describes a history inserted directly into the database, without
// running anything: rounds materializations of each of the partitions keys
// of one asset, each in a run of its own. Round r of key k finished at
// historyBase + r*partitions + k seconds (plus after), and read round r of
// key k-1 (lineage, as a cumulative asset reads its previous partition),
// or round r of key k of asset reads.
type history struct {
	pipeline   string
	asset      string
	partitions int
	rounds     int
	// reads, when set, is the asset whose round r of key k each
	// materialization read, instead of its own key k-1.
	reads string
	// after shifts every finish time (a downstream finishes after what it
	// read).
	after time.Duration
	// failed reports whether round r of key k failed; nil means none did.
	failed func(r, k int) bool
	// waiting is how many more runs are left waiting at a gate (asset
	// "approve", partition key 0), started after the history.
	waiting int
}

var historyBase = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func (h history) key(k int) flowstone.Partition {
	return flowstone.Partition(historyBase.AddDate(0, 0, k).Format(time.DateOnly))
}

func (h history) mat(r, k int) string { return historyMat(h.pipeline, h.asset, r, k) }

func historyMat(pipeline, asset string, r, k int) string {
	return fmt.Sprintf("mat_%s_%s_%06d_%04d", pipeline, asset, r, k)
}

func (h history) run(r, k int) string {
	return fmt.Sprintf("run_%s_%s_%06d_%04d", h.pipeline, h.asset, r, k)
}

func (h history) finished(r, k int) time.Time {
	return historyBase.Add(time.Duration(r*h.partitions+k)*time.Second + h.after)
}

func (h history) status(r, k int) string {
	if h.failed != nil && h.failed(r, k) {
		return "failed"
	}
	return "succeeded"
}

// size is the number of materializations.
func (h history) size() int { return h.rounds * h.partitions }

// insertHistory writes h with multi-row INSERTs, a few hundred rows per
// statement.
func insertHistory(tb testing.TB, e *Engine, h history) {
	tb.Helper()
	ctx := context.Background()
	var runs, assets, mats, lineage [][]any
	flush := func(force bool) {
		for _, t := range []struct {
			table string
			cols  string
			rows  *[][]any
		}{
			{"flowstone_runs", "id, pipeline, partition_key, targets, config_hash, force, status, total, created_at, finished_at", &runs},
			{"flowstone_run_assets", "run_id, asset, partition_key, status, deps, required, materialization_id, attempts, started_at, finished_at", &assets},
			{"flowstone_materializations", "id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, value, attempts, error, started_at, finished_at", &mats},
			{"flowstone_lineage", "materialization_id, upstream_asset, upstream_partition, upstream_materialization_id", &lineage},
		} {
			if len(*t.rows) == 0 || !force && len(*t.rows) < 500 {
				continue
			}
			row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len((*t.rows)[0])), ", ") + ")"
			var args []any
			for _, r := range *t.rows {
				args = append(args, r...)
			}
			q := "INSERT INTO " + t.table + " (" + t.cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", len(*t.rows)), ", ")
			if _, err := e.be.pool().Exec(ctx, q, args...); err != nil {
				tb.Fatalf("insert history into %s: %v", t.table, err)
			}
			*t.rows = (*t.rows)[:0]
		}
	}
	for r := range h.rounds {
		for k := range h.partitions {
			fin := h.finished(r, k).UnixMicro()
			start := fin - 500_000
			st, msg, value := h.status(r, k), "", any(fmt.Sprintf("%d", r))
			if st == "failed" {
				msg, value = "boom", nil
			}
			runStatus := map[string]string{"succeeded": "succeeded", "failed": "failed"}[st]
			runs = append(runs, []any{h.run(r, k), h.pipeline, string(h.key(k)), "[]", "", 0, runStatus, 1, start, fin})
			assets = append(assets, []any{h.run(r, k), h.asset, string(h.key(k)), st, 0, 0, h.mat(r, k), 1, start, fin})
			mats = append(mats, []any{h.mat(r, k), h.pipeline, h.asset, string(h.key(k)), h.run(r, k), st, "v1", "", "", value, 1, msg, start, fin})
			if h.reads != "" && st == "succeeded" {
				lineage = append(lineage, []any{h.mat(r, k), h.reads, string(h.key(k)), historyMat(h.pipeline, h.reads, r, k)})
			} else if k > 0 && st == "succeeded" {
				lineage = append(lineage, []any{h.mat(r, k), h.asset, string(h.key(k - 1)), h.mat(r, k-1)})
			}
			flush(false)
		}
	}
	for i := range h.waiting {
		at := h.finished(h.rounds, i).UnixMicro()
		id := fmt.Sprintf("run_wait_%s_%s_%04d", h.pipeline, h.asset, i)
		runs = append(runs, []any{id, h.pipeline, string(h.key(0)), "[]", "", 0, "running", 2, at, nil})
		assets = append(assets, []any{id, "approve", string(h.key(0)), "waiting", 0, 0, nil, 1, at, nil})
	}
	flush(true)
}

// TestHistoryQueries checks what the history queries return after a long
// history: the newest materialization per asset and per partition (a
// failure after a success shows), the newest N, and the gates waiting.
func TestHistoryQueries(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		cfg.NoWorkers = true
		e := openEngine(t, cfg)
		// Key 3's last round failed; key 5 failed in every round.
		h := history{pipeline: "hist", asset: "events", partitions: 8, rounds: 30, waiting: 2,
			failed: func(r, k int) bool { return k == 5 || k == 3 && r == 29 }}
		insertHistory(t, e, h)
		insertHistory(t, e, history{pipeline: "hist", asset: "other", partitions: 2, rounds: 3})
		insertHistory(t, e, history{pipeline: "elsewhere", asset: "events", partitions: 2, rounds: 40})

		latest, err := e.Latest(ctx, "hist")
		if err != nil {
			t.Fatal(err)
		}
		if len(latest) != 2 || latest["events"].ID != h.mat(29, 7) || latest["other"].ID != "mat_hist_other_000002_0001" {
			t.Fatalf("Latest = %v", ids(latest))
		}
		if up := latest["events"].Upstream; len(up) != 1 || up[0].Materialization != h.mat(29, 6) || up[0].Partition != h.key(6) {
			t.Fatalf("Latest lineage = %+v", up)
		}

		ms, err := e.Materializations(ctx, "hist", "events", 10)
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, m := range ms {
			got = append(got, m.ID)
		}
		for r := 29; r >= 0 && len(want) < 10; r-- {
			for k := 7; k >= 0 && len(want) < 10; k-- {
				want = append(want, h.mat(r, k))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Materializations(10) = %v, want %v", got, want)
		}
		for _, m := range ms {
			if m.Status == "succeeded" && m.Partition != h.key(0) && len(m.Upstream) != 1 {
				t.Fatalf("%s has lineage %+v", m.ID, m.Upstream)
			}
		}

		ps, err := e.PartitionStatuses(ctx, "hist", "events")
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 8 {
			t.Fatalf("PartitionStatuses: %d partitions, want 8", len(ps))
		}
		for k, p := range ps {
			wantStatus := "succeeded"
			if k == 3 || k == 5 {
				wantStatus = "failed"
			}
			if p.Partition != h.key(k) || p.Latest.ID != h.mat(29, k) || p.Latest.Status != wantStatus || p.RunningIn != "" {
				t.Errorf("partition %d: %s %s %s running in %q, want %s %s %s", k, p.Partition, p.Latest.ID, p.Latest.Status, p.RunningIn, h.key(k), h.mat(29, k), wantStatus)
			}
		}
		approve, err := e.PartitionStatuses(ctx, "hist", "approve")
		if err != nil {
			t.Fatal(err)
		}
		if len(approve) != 1 || approve[0].Partition != h.key(0) || approve[0].Latest.ID != "" || !strings.HasPrefix(approve[0].RunningIn, "run_wait_hist_events_") {
			t.Fatalf("PartitionStatuses of a waiting gate = %+v", approve)
		}
		// PartitionHealth counts what PartitionStatuses lists, every asset
		// in one call.
		health, err := e.PartitionHealth(ctx, "hist", []string{"events", "approve", "never"})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]map[string]int{"events": {"succeeded": 6, "failed": 2}, "approve": {"running": 1}}; !reflect.DeepEqual(health, want) {
			t.Fatalf("PartitionHealth = %v, want %v", health, want)
		}

		gates, err := e.Gates(ctx, "hist")
		if err != nil {
			t.Fatal(err)
		}
		if len(gates) != 2 || gates[0].RunID != "run_wait_hist_events_0000" || gates[1].RunID != "run_wait_hist_events_0001" {
			t.Fatalf("Gates = %+v", gates)
		}

		runs, err := e.Runs(ctx, "hist", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 3 || runs[0].ID != "run_wait_hist_events_0001" || runs[0].Pending != 1 || runs[2].ID != h.run(29, 7) {
			t.Fatalf("Runs(hist, 3) = %+v", runs)
		}
		all, err := e.Runs(ctx, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if n := h.size() + 2 + 6 + 80; len(all) != n {
			t.Fatalf("Runs('', 1000): %d runs, want %d", len(all), n)
		}
	})
}

func ids(ms map[string]Materialization) map[string]string {
	out := map[string]string{}
	for k, m := range ms {
		out[k] = m.ID
	}
	return out
}
