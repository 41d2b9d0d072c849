//go:build unix

package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/riverqueue/river/rivertype"
)

// chaosCrashes is how many times TestChaosServerCrash crashes the server:
// 6, or FLOWSTONE_CHAOS_CRASHES.
func chaosCrashes(t *testing.T) int { return chaosCount(t, "FLOWSTONE_CHAOS_CRASHES", 6) }

// TestChaosServerCrash crashes the PostgreSQL server itself, not a worker:
// on a private cluster of its own (initdb into a temporary directory,
// another port; the shared server is never touched), three worker
// processes work runs of the chaos pipeline, two at a time, one after the
// other, while the postmaster is SIGKILLed every 2 to 6 s (alone, or
// with every process of the server at once, in turns) and restarted 0.3
// to 2 s later through crash recovery. The jobs' transactions commit with
// synchronous_commit off (injob.go), so each crash takes the end of the
// log that was not yet written. The server's WAL writer is slowed to
// wal_writer_delay = 10s, so that a crash finds as much of it as it can.
//
// It checks what a user would notice: every run ends, and succeeds; each
// asset has exactly one successful materialization per run (and
// partition), with lineage pointing at the run's own materializations;
// each scatter item is recorded and counted once; a run seen finished
// before a crash is still finished, the same way, after it; no job was
// given up.
func TestChaosServerCrash(t *testing.T) {
	requireChaos(t)
	cl, ok := testdb.NewCluster(t, "wal_writer_delay = '10s'", "wal_writer_flush_after = 0")
	if !ok {
		t.Skip("no PostgreSQL server binaries (initdb, postgres, pg_isready) under /usr/lib/postgresql/*/bin or $FLOWSTONE_PG_BIN: the server-crash run needs a private cluster")
	}
	ctx := context.Background()
	url, schema := cl.URL, "chaos"
	observer := openEngine(t, Config{Database: url, Schema: schema, NoWorkers: true}) // migrates once
	load := loadAverage()
	began := time.Now()

	defer startChaosWorkers(t, 3, url, schema).stop()

	p := chaosPipeline()
	type seen struct {
		status RunStatus
		at     time.Time
	}
	var runs []string
	finished := map[string]seen{} // runs seen finished, and how
	// poll reads each unfinished run (an unreachable database skips the
	// turn) and starts another while fewer than two run.
	poll := func(enqueue bool) {
		inFlight := 0
		for _, id := range runs {
			if _, ok := finished[id]; ok {
				continue
			}
			r, err := observer.Run(ctx, id)
			if IsUnreachable(err) {
				return
			}
			if err != nil {
				t.Fatalf("run %s: %v", id, err)
			}
			if r.Status.Terminal() {
				finished[id] = seen{status: r.Status, at: time.Now()}
				continue
			}
			inFlight++
		}
		for ; enqueue && inFlight < 2; inFlight++ {
			run, err := observer.Materialize(ctx, p, Request{Config: stressConfig{Tag: "chaos"}, Force: true})
			if err != nil {
				t.Fatalf("materialize: %v", err)
			}
			runs = append(runs, run.ID)
		}
	}
	// succeededMats counts the successful materializations of all runs;
	// -1 while the database is away.
	succeededMats := func() int {
		var n int
		if err := observer.be.pool().QueryRow(ctx, `SELECT count(*) FROM flowstone_materializations WHERE status = 'succeeded'`).Scan(&n); err != nil {
			if IsUnreachable(err) {
				return -1
			}
			t.Fatal(err)
		}
		return n
	}

	crashes := chaosCrashes(t)
	var downs, recoveries, resumes []time.Duration
	var lostMats []int
	for c := 1; c <= crashes; c++ {
		for until := time.Now().Add(time.Duration(2000+rand.IntN(4000)) * time.Millisecond); time.Now().Before(until); {
			poll(true)
			time.Sleep(100 * time.Millisecond)
		}
		before := -1
		for before < 0 {
			before = succeededMats()
		}
		all := c%2 == 0
		crashAt := time.Now()
		cl.Crash(all)
		time.Sleep(time.Duration(300+rand.IntN(1700)) * time.Millisecond)
		restartAt := time.Now()
		cl.Start(t)
		up := time.Now()
		downs, recoveries = append(downs, restartAt.Sub(crashAt)), append(recoveries, up.Sub(restartAt))
		// Materializations seen succeeded just before the crash that
		// the crash took back (they are made again), and the time from
		// the crash until the next materialization recorded after it.
		after := -1
		for after < 0 {
			after = succeededMats()
		}
		lostMats = append(lostMats, before-after)
		resumed := time.Duration(-1)
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if n := succeededMats(); n > after {
				resumed = time.Since(crashAt)
				break
			}
			poll(false)
			if len(finished) == len(runs) {
				break // nothing left to make
			}
		}
		resumes = append(resumes, resumed)
		kind := "postmaster"
		if all {
			kind = "all server processes"
		}
		t.Logf("crash %d (SIGKILL %s): down %s, recovery %s, next materialization %s after the crash; %d materializations seen before it taken back; %d of %d runs finished",
			c, kind, restartAt.Sub(crashAt).Round(time.Millisecond), up.Sub(restartAt).Round(time.Millisecond), resumed.Round(time.Millisecond), before-after, len(finished), len(runs))
		// A run seen finished stays finished, the same way.
		for id, s := range finished {
			r, err := observer.Run(ctx, id)
			if err != nil {
				t.Fatalf("run %s after crash %d: %v", id, c, err)
			}
			if r.Status != s.status {
				t.Errorf("run %s was %s (seen at %s), and after crash %d is %s", id, s.status, s.at.Format(time.TimeOnly), c, r.Status)
			}
		}
	}

	for deadline := time.Now().Add(10 * time.Minute); len(finished) < len(runs); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			for _, id := range runs {
				if _, ok := finished[id]; !ok {
					r, _ := observer.Run(ctx, id)
					t.Errorf("run %s not finished 10 minutes after the last crash: %v", id, r.Counts())
				}
			}
			t.FailNow()
		}
		poll(false)
	}
	took := time.Since(began)

	q := observer.be.pool()
	perRun := map[string]int{}
	rows, err := q.Query(ctx, `SELECT run_id, count(*) FROM flowstone_materializations GROUP BY run_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		perRun[id] = n
	}
	rows.Close()
	t.Logf("runs %v; materializations per run %v", runs, perRun)
	for _, id := range runs {
		res, err := observer.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunSucceeded {
			t.Errorf("run %s %s: %v", id, res.Status, res.Counts())
			for k, a := range res.Assets {
				if a.Status != StatusSucceeded {
					t.Logf("  %s: %s %q", k, a.Status, a.Error)
				}
			}
			continue
		}
		if len(res.Assets) != chaosAssets {
			t.Errorf("run %s: %d assets; want %d", id, len(res.Assets), chaosAssets)
		}
		checkOneSuccessEach(t, q, id, chaosAssets)
		checkScatterItemsOnce(t, q, id)
	}
	var dupes int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM (SELECT run_id, asset, partition_key FROM flowstone_materializations
		WHERE status = 'succeeded' GROUP BY run_id, asset, partition_key HAVING count(*) > 1) d`).Scan(&dupes); err != nil {
		t.Fatal(err)
	}
	if dupes != 0 {
		t.Errorf("%d (run, asset, partition) with more than one successful materialization", dupes)
	}

	// Jobs delivered more than once: each attempt past the first came
	// from a crash (no worker is killed here).
	redelivered, attempts := 0, 0
	var why []string
	for _, j := range listAllJobs(t, observer) {
		if j.State == rivertype.JobStateDiscarded || j.State == rivertype.JobStateCancelled {
			t.Errorf("job %d (%s) ended %s: %v", j.ID, j.Kind, j.State, j.Errors)
		}
		if j.Attempt > 1 {
			redelivered++
			attempts += j.Attempt - 1
			for _, e := range j.Errors {
				if msg, _, _ := strings.Cut(e.Error, ":"); !slices.Contains(why, msg) {
					why = append(why, msg)
				}
			}
		}
	}
	line := fmt.Sprintf("| PostgreSQL, server crashed | 3 | %d | %d | %s | %s | %s | %s | %d (%d attempts) | %s |",
		crashes, len(runs), seconds(took), fmtDurations(downs), fmtDurations(recoveries), fmtDurations(resumes),
		redelivered, attempts, load+" → "+loadAverage())
	fmt.Println("CHAOS " + line)
	t.Log(line)
	t.Logf("why jobs ran again: %q; successful materializations seen before each crash and taken back by it: %v", why, lostMats)
}

func fmtDurations(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, strconv.FormatFloat(d.Seconds(), 'f', 1, 64))
	}
	return strings.Join(s, ", ") + " s"
}
