package runtime

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/scatter"
	"github.com/flowstone-go/flowstone/strategy"
)

// The scatter kill test re-executes this test binary as
// TestScatterKillRole: "enqueue" records a run and exits; "worker" works
// it. The first worker dies (os.Exit) in the middle of an item of the
// second batch, both batches in flight; a second worker takes the batches
// over. Every item's call is appended to a file, so the parent counts what
// ran twice.

const (
	killItems, killBatch = 60, 30
	killGroup            = 10 // items a group commits
	killCrashAt          = 45 // the 16th item of batch 1
)

func scatterKillPipeline(calls, marker string) *Pipeline {
	return scatterPipeline("scatterkill", scatterCase{n: killItems,
		opts: strategy.Scatter{Batch: killBatch, Group: scatter.Group{Items: killGroup, MaxWait: time.Hour}},
		item: func(ctx context.Context, c customer) (profile, error) {
			f, err := os.OpenFile(calls, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return profile{}, err
			}
			_, err = fmt.Fprintf(f, "%d\n", c.ID)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return profile{}, err
			}
			if c.ID == killCrashAt {
				if _, err := os.Stat(marker); os.IsNotExist(err) {
					_ = os.WriteFile(marker, nil, 0o644)
					os.Exit(7) // the worker dies mid-batch
				}
			}
			select { // some work, so both batches are in flight
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
				return profile{}, ctx.Err()
			}
			return profile{ID: c.ID}, nil
		}})
}

func TestScatterKillRole(t *testing.T) {
	role := os.Getenv("FLOWSTONE_SCATTERKILL_ROLE")
	if role == "" {
		t.Skip("helper process for TestKilledScatterBatchRedoesOneGroupAtMost")
	}
	cfg := Config{
		Database:      os.Getenv("FLOWSTONE_PROC_DATABASE"),
		Schema:        os.Getenv("FLOWSTONE_PROC_SCHEMA"),
		TakeoverAfter: 2 * time.Second,
		Concurrency:   2,
		PollInterval:  50 * time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	}
	p := scatterKillPipeline(os.Getenv("FLOWSTONE_SCATTERKILL_CALLS"), os.Getenv("FLOWSTONE_SCATTERKILL_MARKER"))
	ctx := context.Background()
	switch role {
	case "enqueue":
		enqueueRole(t, cfg, p, Request{})
	case "worker":
		e, err := Open(ctx, cfg, Bind(p, nil))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println("READY")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		_ = e.Close(ctx)
	}
}

// A worker that dies in the middle of a scatter batch loses at most one
// group of item results per batch in flight: the batch taken over runs
// only the items not committed. Every item is recorded once and gathered
// once. (Before group commits a batch recorded its items only when it
// finished, and the takeover ran the whole batch again.)
func TestKilledScatterBatchRedoesOneGroupAtMost(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow: kills and restarts a process")
	}
	for _, db := range databases(t) {
		t.Run(db.name, func(t *testing.T) {
			t.Parallel()
			cfg := db.config(t)
			if cfg.Schema == "" {
				cfg.Database = "sqlite://" + t.TempDir() + "/scatterkill.db"
			}
			dir := t.TempDir()
			calls, marker := filepath.Join(dir, "calls"), filepath.Join(dir, "crashed")
			observer := openEngine(t, Config{Database: cfg.Database, Schema: cfg.Schema, NoWorkers: true})
			start := func(role string) (*exec.Cmd, string) {
				t.Helper()
				cmd := exec.Command(os.Args[0], "-test.run=^TestScatterKillRole$", "-test.count=1")
				cmd.Env = append(os.Environ(), "FLOWSTONE_SCATTERKILL_ROLE="+role, "FLOWSTONE_PROC_DATABASE="+cfg.Database,
					"FLOWSTONE_PROC_SCHEMA="+cfg.Schema, "FLOWSTONE_SCATTERKILL_CALLS="+calls, "FLOWSTONE_SCATTERKILL_MARKER="+marker)
				cmd.Stderr = os.Stderr
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = cmd.Process.Kill() })
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if line := sc.Text(); strings.HasPrefix(line, "RUN ") || line == "READY" {
						go func() {
							for sc.Scan() {
							}
						}()
						return cmd, strings.TrimPrefix(line, "RUN ")
					}
				}
				t.Fatalf("%s process ended without announcing itself", role)
				return nil, ""
			}
			enq, runID := start("enqueue")
			if err := enq.Wait(); err != nil {
				t.Fatalf("enqueuer: %v", err)
			}
			first, _ := start("worker")
			if err := first.Wait(); err == nil || !strings.Contains(err.Error(), "exit status 7") {
				t.Fatalf("first worker: %v; want it dead at item %d (exit status 7)", err, killCrashAt)
			}
			second, _ := start("worker")
			defer func() {
				_ = second.Process.Signal(syscall.SIGTERM)
				_ = second.Wait()
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
			defer cancel()
			res, err := observer.Wait(ctx, runID)
			if err != nil || res.Status != RunSucceeded {
				t.Fatalf("run: %v, %v", res.Status, err)
			}

			data, err := os.ReadFile(calls)
			if err != nil {
				t.Fatal(err)
			}
			n := make([]int, killItems)
			for line := range strings.Lines(string(data)) {
				id, err := strconv.Atoi(strings.TrimSpace(line))
				if err != nil || id < 0 || id >= killItems {
					t.Fatalf("calls file line %q", line)
				}
				n[id]++
			}
			rerun := make([]int, killItems/killBatch)
			for id, c := range n {
				if c == 0 {
					t.Fatalf("item %d never ran", id)
				}
				rerun[id/killBatch] += c - 1
			}
			for b, r := range rerun {
				if r > killGroup {
					t.Errorf("batch %d: %d item calls ran again after the kill; want one group (%d) at most", b, r, killGroup)
				}
			}
			if rerun[1] == 0 {
				t.Errorf("item %d did not run again after the worker died in it", killCrashAt)
			}
			t.Logf("item calls run again per batch after the kill: %v (group %d)", rerun, killGroup)

			q := observer.be.pool()
			var done int
			rows, distinct, ok, _ := scatterCounts(t, q, runID, "")
			other := rows - ok + (rows - distinct)
			if err := q.QueryRow(ctx, `SELECT done FROM flowstone_scatter_barriers WHERE run_id = ?`, runID).Scan(&done); err != nil {
				t.Fatal(err)
			}
			if ok != killItems || other != 0 || done != killItems {
				t.Fatalf("items: %d succeeded, %d other, barrier counted %d; want %d once each", ok, other, done, killItems)
			}
			ids, err := Load[[]int](ctx, observer, "scatterkill", "report", "")
			if err != nil || len(ids) != killItems {
				t.Fatalf("report: %d ids, %v", len(ids), err)
			}
			for i, id := range ids {
				if id != i {
					t.Fatalf("report: id %d at %d", id, i)
				}
			}
		})
	}
}
