package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// The group statements finish only the nodes that are running or waiting,
// return when each started, and record the materializations, lineage and
// arrivals of many nodes at once, on both databases.
func TestGroupStatements(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		// Two runs: leaves a, b, c feed d in each.
		for _, run := range []string{"r1", "r2"} {
			if _, err := s.InsertRun(ctx, q, NewRun{ID: run, Pipeline: "p", Targets: "[]", Total: 4}); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRunAssets(ctx, q, run, []NodeDeps{{Asset: "a"}, {Asset: "b"}, {Asset: "c"}, {Asset: "d", Deps: 3, Required: 2}}); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRunEdges(ctx, q, run, []Edge{{Asset: "d", Upstream: "a", Required: true},
				{Asset: "d", Upstream: "b", Required: true}, {Asset: "d", Upstream: "c"}}); err != nil {
				t.Fatal(err)
			}
		}
		// a and b running in both runs (b of r2 with no start time); c
		// still pending.
		for i, n := range []Node{{Run: "r1", Asset: "a"}, {Run: "r1", Asset: "b"}, {Run: "r2", Asset: "a"}, {Run: "r2", Asset: "b"}} {
			for _, st := range []AssetStatus{AssetQueued, AssetRunning} {
				if ok, err := s.ClaimAsset(ctx, q, n, st, "", ""); st == AssetQueued && (err != nil || !ok) {
					t.Fatalf("claim %v: %v %v", n, ok, err)
				}
			}
			if i == 3 {
				if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE run_id = ? AND asset = ?`, AssetRunning, n.Run, n.Asset); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if _, ok, err := s.StartAttempt(ctx, q, n, int64(i+1), false, false); err != nil || !ok {
				t.Fatalf("start %v: %v %v", n, ok, err)
			}
		}
		fins := []Finish{
			{Node: Node{Run: "r1", Asset: "a"}, Status: AssetSucceeded, Materialization: "m1a"},
			{Node: Node{Run: "r1", Asset: "b"}, Status: AssetSkipped, Materialization: "m1b", Reason: "nothing new"},
			{Node: Node{Run: "r1", Asset: "c"}, Status: AssetSucceeded, Materialization: "m1c"}, // pending: not finished
			{Node: Node{Run: "r2", Asset: "a"}, Status: AssetSucceeded, Materialization: "m2a"},
			{Node: Node{Run: "r2", Asset: "b"}, Status: AssetSucceeded, Materialization: "m2b"},
		}
		started, err := s.FinishAttempts(ctx, q, fins)
		if err != nil {
			t.Fatal(err)
		}
		if len(started) != 4 {
			t.Fatalf("finished %v; want the 4 running nodes", started)
		}
		if _, ok := started[Node{Run: "r1", Asset: "c"}]; ok {
			t.Fatal("a pending node was finished")
		}
		if started[Node{Run: "r1", Asset: "a"}] == 0 || started[Node{Run: "r2", Asset: "b"}] != 0 {
			t.Fatalf("start times: %v", started)
		}
		again, err := s.FinishAttempts(ctx, q, fins)
		if err != nil || len(again) != 0 {
			t.Fatalf("finished twice: %v %v", again, err)
		}
		ras, err := s.RunAssets(ctx, q, "r1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]RunAsset{}
		for _, ra := range ras {
			got[ra.Asset] = ra
		}
		if b := got["b"]; b.Status != AssetSkipped || b.Materialization != "m1b" || b.Error != "nothing new" || b.FinishedAt == 0 {
			t.Fatalf("r1 b: %+v", b)
		}
		if c := got["c"]; c.Status != AssetPending || c.Materialization != "" {
			t.Fatalf("r1 c: %+v", c)
		}

		var ms []NewMaterialization
		for _, id := range []string{"m1a", "m1b", "m2a", "m2b"} {
			ms = append(ms, NewMaterialization{ID: id, Pipeline: "p", Asset: id[2:], Run: "r" + id[1:2], Status: MatSucceeded,
				Value: []byte(`"` + id + `"`), StartedAt: 1, FinishedAt: 2})
		}
		if err := s.InsertMaterializations(ctx, q, ms); err != nil {
			t.Fatal(err)
		}
		if v, found, err := s.Value(ctx, q, "m2b"); err != nil || !found || v.JSON.String != `"m2b"` {
			t.Fatalf("value: %+v %v %v", v, found, err)
		}
		reads := []Read{{Materialization: "m2b", Lineage: Lineage{Asset: "a", Materialization: "m2a"}},
			{Materialization: "m1b", Lineage: Lineage{Asset: "a", Materialization: "m1a"}},
			{Materialization: "m2b", Lineage: Lineage{Asset: "x", Partition: "k", Materialization: "old"}}}
		if err := s.InsertReads(ctx, q, reads); err != nil {
			t.Fatal(err)
		}
		lin, err := s.LineageOf(ctx, q, []string{"m1b", "m2b"})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(lin) != "map[m1b:[{a  m1a}] m2b:[{a  m2a} {x k old}]]" {
			t.Fatalf("lineage: %v", lin)
		}

		if err := s.InsertArrivalsOf(ctx, q, []Arrival{{Upstream: Node{Run: "r1", Asset: "a"}},
			{Upstream: Node{Run: "r1", Asset: "b"}, Block: BlockSkipped}, {Upstream: Node{Run: "r2", Asset: "a"}}}); err != nil {
			t.Fatal(err)
		}
		// Recorded again (a job delivered twice): nothing more.
		if err := s.InsertArrivalsOf(ctx, q, []Arrival{{Upstream: Node{Run: "r1", Asset: "a"}}}); err != nil {
			t.Fatal(err)
		}
		r1, _, err := s.Readiness(ctx, q, Node{Run: "r1", Asset: "d"})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Arrived != 2 || r1.Status != AssetPending {
			t.Fatalf("r1 d: %+v", r1)
		}
		r2, _, err := s.Readiness(ctx, q, Node{Run: "r2", Asset: "d"})
		if err != nil || r2.Arrived != 1 {
			t.Fatalf("r2 d: %+v %v", r2, err)
		}
		if _, block, _, err := s.Blocker(ctx, q, Node{Run: "r1", Asset: "d"}); err != nil || block != BlockSkipped {
			t.Fatalf("blocker: %q %v", block, err)
		}

		deps, err := s.Dependents(ctx, q, []Node{{Run: "r2", Asset: "b"}, {Run: "r1", Asset: "a"}, {Run: "r1", Asset: "d"}, {Run: "r2", Asset: "a"}})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range deps {
			if d.Upstream.Run != d.Run {
				t.Fatalf("dependent %+v of another run", d)
			}
			names = append(names, d.Run+":"+d.Upstream.Asset+">"+d.Asset)
		}
		if want := []string{"r1:a>d", "r2:a>d", "r2:b>d"}; !slices.Equal(names, want) {
			t.Fatalf("dependents %v; want %v", names, want)
		}
	})
}
