package store

import (
	"context"
	"fmt"
	"regexp"
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

		deps, err := s.Dependents(ctx, q, db.postgres, []Node{{Run: "r2", Asset: "b"}, {Run: "r1", Asset: "a"}, {Run: "r1", Asset: "d"}, {Run: "r2", Asset: "a"}})
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

// RecordFinished records a group larger than any chunk of the statements
// it replaces: the running nodes finish with their materializations
// (timed by their start), lineage and arrivals, the others record nothing,
// and recording the group again changes nothing.
func TestRecordFinished(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		const n = 3*groupChunk + 7
		nodes := []NodeDeps{{Asset: "fan", Deps: n, Required: n}}
		var edges []Edge
		for i := range n {
			a := fmt.Sprintf("a%04d", i)
			nodes = append(nodes, NodeDeps{Asset: a})
			edges = append(edges, Edge{Asset: "fan", Upstream: a, Required: i%2 == 0})
		}
		if _, err := s.InsertRun(ctx, q, NewRun{ID: "r", Pipeline: "p", Targets: "[]", Total: n + 1}); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertRunAssets(ctx, q, "r", nodes); err != nil {
			t.Fatal(err)
		}
		if err := s.InsertRunEdges(ctx, q, "r", edges); err != nil {
			t.Fatal(err)
		}
		// Every node but each tenth runs, started at 1000+i.
		if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE run_id = 'r' AND asset <> 'fan'`, AssetRunning); err != nil {
			t.Fatal(err)
		}
		var fins []Finished
		for i := range n {
			nd := Node{Run: "r", Asset: fmt.Sprintf("a%04d", i)}
			if i%10 == 0 {
				if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE run_id = 'r' AND asset = ?`, AssetCancelled, nd.Asset); err != nil {
					t.Fatal(err)
				}
			} else if _, err := q.Exec(ctx, `UPDATE flowstone_run_assets SET started_at = ? WHERE run_id = 'r' AND asset = ?`, 1000+i, nd.Asset); err != nil {
				t.Fatal(err)
			}
			status, block := AssetSucceeded, BlockNone
			if i%3 == 1 {
				status, block = AssetSkipped, BlockSkipped
			}
			mat := "m" + nd.Asset
			f := Finished{Finish: Finish{Node: nd, Status: status, Materialization: mat, Reason: "why " + nd.Asset}, Block: block,
				M: NewMaterialization{ID: mat, Pipeline: "p", Asset: nd.Asset, Run: "r", Status: MatSucceeded, CodeVersion: "v",
					Attempts: 1 + i%2, Error: "e" + nd.Asset, Metadata: `{"i":1}`, External: i%4 == 3}}
			if i%4 != 3 {
				f.M.Value = []byte(`"` + mat + `"`)
			}
			if i%5 == 2 {
				f.Reads = []Lineage{{Asset: "up", Partition: "k", Materialization: "mu"}, {Asset: "up2", Materialization: "mu2"}}
			}
			fins = append(fins, f)
		}
		rec, err := s.RecordFinished(ctx, q, db.postgres, fins)
		if err != nil {
			t.Fatal(err)
		}
		started := rec.Started
		// Every node it finished has the fan-in for dependent.
		if len(rec.Dependents) != len(started) {
			t.Fatalf("%d dependents of %d finished nodes", len(rec.Dependents), len(started))
		}
		for _, d := range rec.Dependents {
			if _, ok := started[d.Upstream]; !ok || d.Node != (Node{Run: "r", Asset: "fan"}) {
				t.Fatalf("dependent %+v", d)
			}
		}
		recorded := 0
		for i, f := range fins {
			st, ok := started[f.Node]
			if ok != (i%10 != 0) || ok && st != int64(1000+i) {
				t.Fatalf("%s: started %d, %v", f.Asset, st, ok)
			}
			if ok {
				recorded++
			}
		}
		again, err := s.RecordFinished(ctx, q, db.postgres, fins)
		if err != nil || len(again.Started) != 0 || len(again.Dependents) != 0 {
			t.Fatalf("recorded twice: %v %v", again, err)
		}

		var mats, values, external, timed int
		if err := q.QueryRow(ctx, `SELECT count(*), count(value), sum(external), sum(CASE WHEN finished_at > started_at AND started_at >= 1000 THEN 1 ELSE 0 END)
			FROM flowstone_materializations`).Scan(&mats, &values, &external, &timed); err != nil {
			t.Fatal(err)
		}
		if mats != recorded || timed != recorded || external == 0 || values != recorded-external {
			t.Fatalf("materializations %d (values %d, external %d, timed %d); want %d", mats, values, external, timed, recorded)
		}
		var ids []string
		for i, f := range fins {
			if i%10 != 0 {
				ids = append(ids, f.Materialization)
			}
		}
		lin, err := s.LineageOf(ctx, q, ids)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range fins {
			want := 0
			if i%10 != 0 && i%5 == 2 {
				want = 2
			}
			if got := lin[f.Materialization]; len(got) != want || want > 0 && (got[0] != Lineage{Asset: "up", Partition: "k", Materialization: "mu"}) {
				t.Fatalf("lineage of %s: %v", f.Materialization, got)
			}
		}
		if v, found, err := s.Value(ctx, q, "ma0001"); err != nil || !found || v.JSON.String != `"ma0001"` {
			t.Fatalf("value: %+v %v %v", v, found, err)
		}
		ras, err := s.RunAssets(ctx, q, "r")
		if err != nil {
			t.Fatal(err)
		}
		for _, ra := range ras {
			if ra.Asset == "a0001" && (ra.Status != AssetSkipped || ra.Materialization != "ma0001" || ra.Error != "why a0001" || ra.FinishedAt == 0) {
				t.Fatalf("a0001: %+v", ra)
			}
		}
		r, _, err := s.Readiness(ctx, q, Node{Run: "r", Asset: "fan"})
		if err != nil || r.Arrived != recorded {
			t.Fatalf("fan: %+v %v; want %d arrivals", r, err, recorded)
		}
		// Skips block the fan-in only where it requires them (even i).
		if _, block, _, err := s.Blocker(ctx, q, Node{Run: "r", Asset: "fan"}); err != nil || block != BlockSkipped {
			t.Fatalf("blocker: %q %v", block, err)
		}
		var blocking int
		if err := q.QueryRow(ctx, `SELECT count(*) FROM flowstone_arrivals WHERE block <> ''`).Scan(&blocking); err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := range n {
			if i%10 != 0 && i%3 == 1 && i%2 == 0 {
				want++
			}
		}
		if blocking != want {
			t.Fatalf("%d blocking arrivals; want %d", blocking, want)
		}
	})
}

// textRecorder is a Querier that notes the text of every statement it
// sends.
type textRecorder struct {
	Querier
	texts map[string]bool
}

func (r textRecorder) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	r.texts[query] = true
	return r.Querier.Exec(ctx, query, args...)
}

func (r textRecorder) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	r.texts[query] = true
	return r.Querier.Query(ctx, query, args...)
}

func (r textRecorder) QueryRow(ctx context.Context, query string, args ...any) Row {
	r.texts[query] = true
	return r.Querier.QueryRow(ctx, query, args...)
}

// The group statements (starts, and the recording of results) have a few
// texts whatever the group's size, so that SQLite's statement cache and
// pgx prepare each once: groups of 1 to 40 nodes, each started and
// recorded exactly, take at most six texts of each statement. (The
// recorder wraps the querier, so on PostgreSQL too the inserts are split
// as on SQLite.)
func TestGroupStatementsHaveFewTexts(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		rec := textRecorder{Querier: db.q, texts: map[string]bool{}}
		for size := 1; size <= 40; size++ {
			run := fmt.Sprintf("r%02d", size)
			nodes := []NodeDeps{{Asset: "fan", Deps: size, Required: size}}
			var edges []Edge
			var starts []Start
			var fins []Finished
			for i := range size {
				a := fmt.Sprintf("a%02d", i)
				nodes = append(nodes, NodeDeps{Asset: a, Queued: true})
				edges = append(edges, Edge{Asset: "fan", Upstream: a, Required: true})
				n := Node{Run: run, Asset: a}
				starts = append(starts, Start{Node: n, Job: int64(i + 1)})
				mat := run + "/" + a
				fins = append(fins, Finished{Finish: Finish{Node: n, Status: AssetSucceeded, Materialization: mat},
					M:     NewMaterialization{ID: mat, Pipeline: "p", Asset: a, Run: run, Status: MatSucceeded, Attempts: 1},
					Reads: []Lineage{{Asset: "up", Materialization: "mu"}}})
			}
			if _, err := s.InsertRun(ctx, db.q, NewRun{ID: run, Pipeline: "p", Targets: "[]", Total: size + 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRunAssets(ctx, db.q, run, nodes); err != nil {
				t.Fatal(err)
			}
			if err := s.InsertRunEdges(ctx, db.q, run, edges); err != nil {
				t.Fatal(err)
			}
			started, err := s.StartQueuedMany(ctx, rec, db.postgres, starts)
			if err != nil || len(started) != size {
				t.Fatalf("size %d: started %d: %v", size, len(started), err)
			}
			r, err := s.RecordFinished(ctx, rec, db.postgres, fins)
			if err != nil || len(r.Started) != size || len(r.Dependents) != size {
				t.Fatalf("size %d: finished %d, %d dependents: %v", size, len(r.Started), len(r.Dependents), err)
			}
			var mats, reads, arrivals int
			if err := db.q.QueryRow(ctx, `SELECT (SELECT count(*) FROM flowstone_materializations WHERE run_id = ?),
				(SELECT count(*) FROM flowstone_lineage WHERE materialization_id LIKE ?),
				(SELECT count(*) FROM flowstone_arrivals WHERE run_id = ?)`, run, run+"/%", run).Scan(&mats, &reads, &arrivals); err != nil {
				t.Fatal(err)
			}
			if mats != size || reads != size || arrivals != size {
				t.Fatalf("size %d: %d materializations, %d reads, %d arrivals", size, mats, reads, arrivals)
			}
		}
		// A statement's kind is its text without its rows.
		rows := regexp.MustCompile(`\((\?, )*\?\)(, \((\?, )*\?\))*`)
		kinds := map[string]int{}
		for text := range rec.texts {
			kinds[rows.ReplaceAllString(text, "rows")]++
		}
		for kind, texts := range kinds {
			if texts > 6 {
				t.Errorf("%d texts of %.80q", texts, kind)
			}
		}
	})
}
