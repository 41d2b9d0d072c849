package runtime

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// sensorPipeline: "orders" materializes a partition of a static set; the
// sensor "new_files" asks for one run per file number after its cursor
// (repeating the last one, which its run key makes harmless); "broken"
// panics every time.
func sensorPipeline() *Pipeline {
	orders := def("orders", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	orders.Partitions = flowstone.Static("f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9")
	return NewPipeline(PipelineDef{Name: "sensors", Assets: []AssetDef{orders}, Sensors: []SensorDef{
		{Name: "new_files", Every: 200 * time.Millisecond, Targets: []string{"orders"},
			Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
				n, _ := strconv.Atoi(cursor)
				var res flowstone.SensorResult
				for i := max(n, 1); i <= min(n+2, 9); i++ {
					key := fmt.Sprintf("f%d", i)
					res.Requests = append(res.Requests, flowstone.RunRequest{RunKey: key, Partition: flowstone.Partition(key)})
				}
				res.Cursor = strconv.Itoa(min(n+2, 9))
				return res, nil
			}},
		{Name: "broken", Every: 200 * time.Millisecond, Targets: []string{"orders"},
			Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
				panic("sensor bug")
			}},
		{Name: "bad_partition", Every: 200 * time.Millisecond, Targets: []string{"orders"},
			Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
				return flowstone.SensorResult{Requests: []flowstone.RunRequest{{RunKey: "x", Partition: "f99"}}, Cursor: "same"}, nil
			}},
	}})
}

func TestSensorsRequestRunsOnceAndKeepTheirCursor(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		p := sensorPipeline()
		e := openEngine(t, cfg, Bind(p, nil))
		state := func(e *Engine) map[string]SensorStatus {
			ss, err := e.Sensors(ctx, "sensors")
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]SensorStatus{}
			for _, s := range ss {
				out[s.Name] = s
			}
			return out
		}
		deadline := time.Now().Add(40 * time.Second)
		for state(e)["new_files"].Cursor != "9" || state(e)["broken"].Evaluations < 2 || state(e)["bad_partition"].Evaluations < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("sensors after 40s: %+v", state(e))
			}
			time.Sleep(100 * time.Millisecond)
		}
		st := state(e)
		if st["new_files"].Runs != 9 || st["new_files"].LastError != "" {
			t.Errorf("new_files: %+v; want 9 runs, one per file", st["new_files"])
		}
		if !strings.Contains(st["broken"].LastError, "panic: sensor bug") {
			t.Errorf("broken: %+v", st["broken"])
		}
		if !strings.Contains(st["bad_partition"].LastError, `invalid partition "f99"`) || st["bad_partition"].Cursor != "same" {
			t.Errorf("bad_partition: %+v", st["bad_partition"])
		}
		runs, _ := e.Runs(ctx, "sensors", 100)
		if len(runs) != 9 {
			t.Fatalf("%d runs; want 9 (run keys make repeated requests no-ops)", len(runs))
		}

		// The cursor survives a restart: a new engine goes on from 9.
		if err := e.Close(ctx); err != nil {
			t.Fatal(err)
		}
		e2 := openEngine(t, cfg, Bind(sensorPipeline(), nil))
		before := state(e2)["new_files"].Evaluations
		for state(e2)["new_files"].Evaluations < before+2 {
			if time.Now().After(deadline.Add(20 * time.Second)) {
				t.Fatal("sensor not evaluated after restart")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if runs, _ := e2.Runs(ctx, "sensors", 100); len(runs) != 9 || state(e2)["new_files"].Cursor != "9" {
			t.Fatalf("after restart: %d runs, cursor %q", len(runs), state(e2)["new_files"].Cursor)
		}
	})
}

func TestSensorRequestsComputeTheirTargetsUnlessTheyOptIntoReuse(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var ready atomic.Bool
		front := def("front_page", func(ctx context.Context, in *Inputs) (any, error) { return time.Now().UnixNano(), nil })
		p := NewPipeline(PipelineDef{Name: "refresh", Assets: []AssetDef{front}, Sensors: []SensorDef{
			{Name: "poll", Every: 100 * time.Millisecond, Targets: []string{"front_page"},
				Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
					if !ready.Load() {
						return flowstone.SensorResult{}, nil
					}
					return flowstone.SensorResult{Requests: []flowstone.RunRequest{
						{RunKey: "reuse", Reuse: true},
						{RunKey: "fresh"},
					}}, nil
				}},
		}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, run.ID)
		ready.Store(true)
		statuses := map[string]AssetStatus{} // by run ID
		deadline := time.Now().Add(40 * time.Second)
		for len(statuses) < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("sensor runs after 40s: %v", statuses)
			}
			time.Sleep(100 * time.Millisecond)
			runs, err := e.Runs(ctx, "refresh", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				if r.ID == run.ID {
					continue
				}
				res, err := e.Run(ctx, r.ID)
				if err != nil {
					t.Fatal(err)
				}
				if st := res.Assets["front_page"].Status; st.Terminal() {
					statuses[r.ID] = st
				}
			}
		}
		count := map[AssetStatus]int{}
		for _, st := range statuses {
			count[st]++
		}
		if count[StatusReused] != 1 || count[StatusSucceeded] != 1 {
			t.Errorf("sensor runs: %v; want the Reuse request reused and the other computed", statuses)
		}
	})
}

// A sensor's cursor is bounded: one longer than MaxSensorCursor, not
// valid UTF-8, or holding a NUL byte fails the evaluation with
// ErrBadCursor, starts none of its requests and keeps the stored cursor;
// one of exactly MaxSensorCursor bytes is stored.
func TestSensorCursorBound(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		orders := def("orders", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
		cursors := map[string]string{
			"huge":    strings.Repeat("x", MaxSensorCursor+1),
			"binary":  "pos\xff\xfe",
			"nul":     "a\x00b",
			"largest": strings.Repeat("y", MaxSensorCursor),
		}
		var sensors []SensorDef
		for name, c := range cursors {
			sensors = append(sensors, SensorDef{Name: name, Every: time.Hour, Targets: []string{"orders"},
				Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
					return flowstone.SensorResult{Requests: []flowstone.RunRequest{{RunKey: name}}, Cursor: c}, nil
				}})
		}
		p := NewPipeline(PipelineDef{Name: "cursors", Assets: []AssetDef{orders}, Sensors: sensors})
		cfg := db.config(t)
		cfg.NoWorkers = true // evaluated by hand
		b := Bind(p, nil)
		e := openEngine(t, cfg, b)
		for name := range cursors {
			if err := e.evaluateSensor(ctx, p, b, name); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		ss, err := e.Sensors(ctx, "cursors")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Name == "largest" {
				if s.Cursor != cursors["largest"] || s.Runs != 1 || s.LastError != "" {
					t.Errorf("largest: cursor of %d bytes, %d runs, error %q; want it stored and one run", len(s.Cursor), s.Runs, s.LastError)
				}
				continue
			}
			if s.Cursor != "" || s.Runs != 0 || s.Evaluations != 1 || !strings.Contains(s.LastError, ErrBadCursor.Error()) {
				t.Errorf("%s: %+v; want the evaluation failed with %q, no run, the cursor kept", s.Name, s, ErrBadCursor)
			}
		}
		if !strings.Contains(fmt.Sprint(ss), "more than the limit of 65536") {
			t.Errorf("no error names the limit: %+v", ss)
		}
		runs, err := e.Runs(ctx, "cursors", 10)
		if err != nil || len(runs) != 1 {
			t.Fatalf("%d runs, %v; want only the one of the sensor whose cursor was stored", len(runs), err)
		}
	})
}
