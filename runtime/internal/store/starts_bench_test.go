package store

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
)

// BenchmarkStartQueued starts the attempts of a group of queued nodes one
// statement each (StartQueued) and in one statement (StartQueuedMany):
// the database's cost per start, without the engine, on the clock and in
// the process's CPU time (SQLite's work is the process's own).
func BenchmarkStartQueued(b *testing.B) {
	for _, db := range testdb.All(b) {
		for _, size := range []int{16, 100} {
			for _, grouped := range []bool{false, true} {
				name := fmt.Sprintf("%s/group%d/one_by_one", db.Name, size)
				if grouped {
					name = fmt.Sprintf("%s/group%d/grouped", db.Name, size)
				}
				b.Run(name, func(b *testing.B) {
					benchStarts(b, open(b, db), size, grouped)
				})
			}
		}
	}
}

func benchStarts(b *testing.B, db testDB, size int, grouped bool) {
	ctx := context.Background()
	migrated(b, db)
	var s Store
	q := db.q
	nodes := make([]NodeDeps, 1000)
	for i := range nodes {
		nodes[i] = NodeDeps{Asset: fmt.Sprintf("asset_%04d", i)}
	}
	starts := 0
	var cpu time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		run := fmt.Sprintf("run_%08d", i)
		if _, err := s.InsertRun(ctx, q, NewRun{ID: run, Pipeline: "p", Targets: "[]", Total: len(nodes)}); err != nil {
			b.Fatal(err)
		}
		if err := s.InsertRunAssets(ctx, q, run, nodes); err != nil {
			b.Fatal(err)
		}
		group := make([]Start, size)
		for j := range group {
			group[j] = Start{Node{Run: run, Asset: nodes[j].Asset}, int64(j + 1)}
			if _, err := s.ClaimAsset(ctx, q, group[j].Node, AssetQueued, "", ""); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		cpu0 := cpuTime(b)
		if grouped {
			started, err := s.StartQueuedMany(ctx, q, db.postgres, group)
			if err != nil || len(started) != size {
				b.Fatalf("started %d of %d: %v", len(started), size, err)
			}
		} else {
			for _, g := range group {
				if _, ok, err := s.StartQueued(ctx, q, g.Node, g.Job); err != nil || !ok {
					b.Fatalf("start: %v, %v", ok, err)
				}
			}
		}
		cpu += cpuTime(b) - cpu0
		starts += size
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(starts), "µs/start")
	b.ReportMetric(float64(cpu.Microseconds())/float64(starts), "cpu_µs/start")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
