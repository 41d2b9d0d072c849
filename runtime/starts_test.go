package runtime

import (
	"context"
	"fmt"
	"testing"

	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// A group of starts starts its queued nodes once each, under their own
// jobs, and none of a node another process started, a node named twice
// (its second start is its own, and finds it running), a node of a
// cancelled run, or any node of a group whose statement failed (each
// then starts by itself).
func TestStartGroupStartsQueuedNodesOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		noop := func(context.Context, *Inputs) (any, error) { return nil, nil }
		p := NewPipeline(PipelineDef{Name: "starts", Assets: []AssetDef{
			def("a", noop), def("b", noop), def("c", noop),
		}})
		cfg := db.config(t)
		cfg.NoWorkers = true
		e := openEngine(t, cfg, Bind(p, nil))
		runs := make([]string, 3)
		for i := range runs {
			run, err := e.Materialize(ctx, p, Request{Targets: []string{"a", "b", "c"}, Force: true})
			if err != nil {
				t.Fatal(err)
			}
			runs[i] = run.ID
		}
		if err := e.Cancel(ctx, runs[1]); err != nil {
			t.Fatal(err)
		}
		node := func(run int, asset string) store.Node { return store.Node{Run: runs[run], Asset: asset} }
		// Another process started b of the first run.
		if _, ok, err := e.st.StartQueued(ctx, e.be.pool(), node(0, "b"), 99); err != nil || !ok {
			t.Fatalf("start elsewhere: %v, %v", ok, err)
		}
		startAll := func(group []*startReq) []int {
			e.startMany(ctx, group, nil)
			out := make([]int, len(group))
			for i, r := range group {
				if r.alone {
					e.startAlone(ctx, r)
				}
				if r.err != nil {
					t.Fatalf("start %v: %v", r.s.Node, r.err)
				}
				out[i] = r.attempts
			}
			return out
		}
		var group []*startReq
		for i, n := range []store.Node{node(0, "a"), node(0, "a"), node(0, "b"), node(0, "c"), node(1, "a")} {
			group = append(group, &startReq{s: store.Start{Node: n, Job: int64(i + 1)}})
		}
		if got := startAll(group); fmt.Sprint(got) != "[1 0 0 1 0]" {
			t.Fatalf("attempts %v; want [1 0 0 1 0]", got)
		}

		// A group whose statement fails is started start by start.
		failing := &startReq{s: store.Start{Node: node(2, "a"), Job: 10}}
		ctxDone, cancel := context.WithCancel(ctx)
		cancel()
		e.startMany(ctxDone, []*startReq{failing, {s: store.Start{Node: node(2, "b"), Job: 11}}}, nil)
		if !failing.alone {
			t.Fatal("a start of a failed group is not left to start alone")
		}
		e.startAlone(ctx, failing)
		if failing.err != nil || failing.attempts != 1 {
			t.Fatalf("alone after a failed group: %d, %v", failing.attempts, failing.err)
		}

		st, _, err := e.st.JobState(ctx, e.be.pool(), node(0, "b"))
		if err != nil || st.Status != store.AssetRunning || st.Attempts != 1 {
			t.Fatalf("b started elsewhere: %+v, %v", st, err)
		}
		st, _, err = e.st.JobState(ctx, e.be.pool(), node(1, "a"))
		if err != nil || st.Status != store.AssetCancelled || st.Attempts != 0 {
			t.Fatalf("a of the cancelled run: %+v, %v", st, err)
		}
	})
}
