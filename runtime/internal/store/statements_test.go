package store

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

func migrated(t testing.TB, db testDB) {
	t.Helper()
	if err := (Store{}).Migrate(context.Background(), db.inTx, []Line{Core()}); err != nil {
		t.Fatal(err)
	}
}

// The conditional statements are what makes concurrent workers safe: a
// run key starts one run, a node is claimed once, state is stored once,
// and a backfill partition moves on only from the status its mover saw.
func TestStatementsActOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		for i, id := range []string{"run_a", "run_b"} {
			inserted, err := s.InsertRun(ctx, q, NewRun{ID: id, Pipeline: "p", Targets: "[]", Total: 1, RunKey: "k"})
			if err != nil || inserted != (i == 0) {
				t.Fatalf("insert %s: %v, %v", id, inserted, err)
			}
		}
		if r, err := s.RunByKey(ctx, q, "p", "k"); err != nil || r.ID != "run_a" || r.Targets != "[]" || r.Config != nil {
			t.Fatalf("run by key: %+v, %v", r, err)
		}
		if err := s.InsertRunAssets(ctx, q, "run_a", []NodeDeps{{Asset: "x"}}); err != nil {
			t.Fatal(err)
		}
		n := Node{Run: "run_a", Asset: "x"}
		for i := range 2 {
			claimed, err := s.ClaimAsset(ctx, q, n, AssetQueued, "", "")
			if err != nil || claimed != (i == 0) {
				t.Fatalf("claim %d: %v, %v", i, claimed, err)
			}
		}
		for i, v := range []string{`"first"`, `"second"`} {
			saved, err := s.SaveState(ctx, q, n, "decision", v)
			if err != nil || saved != (i == 0) {
				t.Fatalf("save %s: %v, %v", v, saved, err)
			}
		}
		if v, found, err := s.State(ctx, q, n, "decision"); err != nil || !found || v != `"first"` {
			t.Fatalf("state: %q %v %v", v, found, err)
		}
		if _, found, _ := s.State(ctx, q, Node{Run: "run_a", Asset: "y"}, "decision"); found {
			t.Fatal("another asset of the run sees the state")
		}
		if err := s.InsertBackfill(ctx, q, NewBackfill{ID: "bf", Pipeline: "p", Targets: "[]", MaxConcurrent: 1, Partitions: []string{"a", "b"}}); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.SetPartition(ctx, q, "bf", 0, PartitionPending, PartitionLaunching, ""); err != nil || !ok {
			t.Fatalf("claim partition: %v, %v", ok, err)
		}
		if ok, err := s.SetPartition(ctx, q, "bf", 0, PartitionPending, PartitionLaunching, ""); err != nil || ok {
			t.Fatalf("claim it again: %v, %v", ok, err)
		}
		if p, found, err := s.NextPartition(ctx, q, "bf", PartitionLaunching); err != nil || !found || p.Key != "a" {
			t.Fatalf("launching: %+v %v %v", p, found, err)
		}
		if n, err := s.CountPartitions(ctx, q, "bf", PartitionPending, PartitionLaunching); err != nil || n != 2 {
			t.Fatalf("count: %d, %v", n, err)
		}
	})
}

// A queued node starts with one statement, unless its run is cancelled; a
// node still running when its job comes back counts the crash of its last
// attempt: the first however it happened, later ones only when that
// attempt ran alone.
func TestStartCountsCrashes(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		if _, err := s.InsertRun(ctx, q, NewRun{ID: "run_a", Pipeline: "p", Targets: `["x"]`, Force: true, Total: 2, Partition: "2026-01-01"}); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertRunAssets(ctx, q, "run_a", []NodeDeps{{Asset: "x"}, {Asset: "y"}}); err != nil {
			t.Fatal(err)
		}
		info, found, err := s.RunInfo(ctx, q, "run_a")
		if err != nil || !found || !info.Force || info.Targets != `["x"]` || info.Partition != "2026-01-01" || info.HasConfig {
			t.Fatalf("run info: %+v, %v, %v", info, found, err)
		}
		if _, found, err := s.RunInfo(ctx, q, "run_b"); err != nil || found {
			t.Fatalf("run info of no run: %v, %v", found, err)
		}
		n := Node{Run: "run_a", Asset: "x"}
		if _, ok, err := s.StartQueued(ctx, q, n, 1); err != nil || ok {
			t.Fatalf("start of a pending node: %v, %v", ok, err)
		}
		if _, err := s.ClaimAsset(ctx, q, n, AssetQueued, "", ""); err != nil {
			t.Fatal(err)
		}
		if attempts, ok, err := s.StartQueued(ctx, q, n, 1); err != nil || !ok || attempts != 1 {
			t.Fatalf("start: %d, %v, %v", attempts, ok, err)
		}
		if _, ok, err := s.StartQueued(ctx, q, n, 1); err != nil || ok {
			t.Fatalf("start of a running node: %v, %v", ok, err)
		}
		// The process died: the first crash counts, whoever caused it;
		// a crash next to others does not count again; one alone does.
		for i, c := range []struct {
			alone   bool
			crashes int
		}{{true, 1}, {false, 2}, {false, 2}, {true, 2}, {true, 3}} {
			st, found, err := s.JobState(ctx, q, n)
			if err != nil || !found || st.Status != AssetRunning {
				t.Fatalf("state: %+v, %v, %v", st, found, err)
			}
			started, ok, err := s.StartAttempt(ctx, q, n, 1, true, c.alone)
			if err != nil || !ok || started.Crashes != c.crashes || started.Attempts != i+2 || st.CountsCrash() != (started.Crashes > st.Crashes) {
				t.Fatalf("start %d: %+v, %v, %v; want %d crashes", i, started, ok, err, c.crashes)
			}
		}
		// A start after an attempt that returned without recording its
		// end counts no crash.
		if started, ok, err := s.StartAttempt(ctx, q, n, 1, false, false); err != nil || !ok || started.Crashes != 3 || started.Attempts != 7 {
			t.Fatalf("start after a returned attempt: %+v, %v, %v", started, ok, err)
		}
		// A cancelled run starts nothing.
		y := Node{Run: "run_a", Asset: "y"}
		if _, err := s.ClaimAsset(ctx, q, y, AssetQueued, "", ""); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.CancelRun(ctx, q, "run_a"); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := s.StartQueued(ctx, q, y, 2); err != nil || ok {
			t.Fatalf("start in a cancelled run: %v, %v", ok, err)
		}
	})
}

// StartQueuedMany starts, in one statement, the queued nodes of a group
// under their own jobs, and leaves a node another process started, a
// pending node and the nodes of a cancelled run as they are.
func TestStartQueuedMany(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		var queued []Node
		for _, run := range []string{"run_a", "run_b"} {
			if _, err := s.InsertRun(ctx, q, NewRun{ID: run, Pipeline: "p", Targets: "[]", Total: 3}); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRunAssets(ctx, q, run, []NodeDeps{{Asset: "x"}, {Asset: "y"}, {Asset: "z", Partition: "p1"}}); err != nil {
				t.Fatal(err)
			}
			for _, n := range []Node{{Run: run, Asset: "x"}, {Run: run, Asset: "z", Partition: "p1"}} {
				if _, err := s.ClaimAsset(ctx, q, n, AssetQueued, "", ""); err != nil {
					t.Fatal(err)
				}
				queued = append(queued, n)
			}
		}
		if _, _, err := s.CancelRun(ctx, q, "run_b"); err != nil {
			t.Fatal(err)
		}
		// run_a's x was started by another process; y is pending.
		if _, ok, err := s.StartQueued(ctx, q, queued[0], 7); err != nil || !ok {
			t.Fatalf("start: %v, %v", ok, err)
		}
		group := []Start{{Node{Run: "run_a", Asset: "y"}, 1}}
		for i, n := range queued {
			group = append(group, Start{n, int64(i + 2)})
		}
		got, err := s.StartQueuedMany(ctx, q, db.postgres, group)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[queued[1]] != 1 {
			t.Fatalf("started %v; want only %v, attempt 1", got, queued[1])
		}
		for _, c := range []struct {
			n        Node
			status   AssetStatus
			attempts int
			job      int64
		}{
			{queued[0], AssetRunning, 1, 7},
			{queued[1], AssetRunning, 1, 3},
			{Node{Run: "run_a", Asset: "y"}, AssetPending, 0, 0},
			{queued[2], AssetQueued, 0, 0},
			{queued[3], AssetQueued, 0, 0},
		} {
			st, _, err := s.JobState(ctx, q, c.n)
			var job sql.NullInt64
			if err == nil {
				err = q.QueryRow(ctx, `SELECT job_id FROM flowstone_run_assets WHERE run_id = ? AND asset = ? AND partition_key = ?`,
					c.n.Run, c.n.Asset, c.n.Partition).Scan(&job)
			}
			if err != nil || st.Status != c.status || st.Attempts != c.attempts || job.Int64 != c.job {
				t.Fatalf("%v: %s, %d attempts, job %d, %v; want %s, %d, job %d", c.n, st.Status, st.Attempts, job.Int64, err, c.status, c.attempts, c.job)
			}
		}
	})
}

// On SQLite a group's start finds each node by its key whatever the
// group's size: without statistics, SQLite's planner otherwise walks the
// index on status for 16 rows or more, scanning every queued node of
// every run once per row (a 1,000-asset run's starts took a quarter of
// the process's time).
func TestStartQueuedManyFindsNodesByKey(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		if db.postgres {
			t.Skip("SQLite's planner")
		}
		ctx := context.Background()
		migrated(t, db)
		for rows := 2; rows <= 512; rows *= 2 {
			text := startQueuedManySQL(false, rows)
			args := make([]any, strings.Count(text, "?"))
			for i := range args {
				args[i] = "x"
			}
			rs, err := db.q.Query(ctx, "EXPLAIN QUERY PLAN "+text, args...)
			if err != nil {
				t.Fatal(err)
			}
			var plan []string
			for rs.Next() {
				var id, parent, unused int
				var detail string
				if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rs.Close()
			if err := rs.Err(); err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(plan, "; ")
			if !strings.Contains(joined, "SEARCH flowstone_run_assets USING INDEX sqlite_autoindex_flowstone_run_assets_1") {
				t.Fatalf("%d rows: plan %s", rows, joined)
			}
		}
	})
}
