package runtime

import (
	"context"

	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// The starts of queued nodes that arrive together are made together, the
// way the recorder records results (recorder.go): River hands a fetched
// batch of jobs to its workers at once, and each attempt's start is a
// write. The start that finds no group under way starts its node at once,
// alone, with store.StartQueued; those that arrive while a statement runs
// form the next group, started by the first of them with one statement
// (store.StartQueuedMany). No goroutine, no timer: a lone start waits for
// nothing.
//
// A grouped start is the same update as a lone one, row by row: a node
// starts only from queued, only when its run is not cancelled, under its
// own job, and a node that does not start is decided by workNode as
// before (store.JobState). A group whose statement fails is started again
// start by start, so that a failure (or the leader's context ending) is
// each start's own.

// maxStartGroup bounds a group of starts.
const maxStartGroup = 256

// startReq is a start waiting for its group.
type startReq struct {
	s store.Start
	// attempts is the attempt's number, 0 when the node did not start.
	attempts int
	err      error
	// alone is set when the group did not start it: it starts by itself.
	alone bool
	turn
}

// startGroup gathers the starts that arrive while a group's statement
// runs into the next group (groupCommit).
type startGroup = groupCommit[*startReq]

// startQueuedNode starts n under job through the engine's start group;
// ok is false when n is not queued or its run is cancelled.
func (e *Engine) startQueuedNode(ctx context.Context, n store.Node, job int64) (attempts int, ok bool, err error) {
	r := &startReq{s: store.Start{Node: n, Job: job}}
	e.starts.join(ctx, r)
	if r.alone {
		e.startAlone(ctx, r)
	}
	return r.attempts, r.attempts > 0, r.err
}

// startAlone starts r by itself.
func (e *Engine) startAlone(ctx context.Context, r *startReq) {
	r.err = e.out.ride(ctx, func(ctx context.Context) error {
		var err error
		r.attempts, _, err = e.st.StartQueued(ctx, e.be.pool(), r.s.Node, r.s.Job)
		return err
	})
}

// startMany starts group's nodes: a lone start with store.StartQueued, a
// group in one statement. A node twice in the group, and every start of
// a group whose statement failed, is left for its job to start alone.
func (e *Engine) startMany(ctx context.Context, group []*startReq, _ func()) {
	if len(group) == 1 {
		e.startAlone(ctx, group[0])
		return
	}
	starts := make([]store.Start, 0, len(group))
	seen := make(map[store.Node]bool, len(group))
	for _, r := range group {
		if seen[r.s.Node] {
			r.alone = true
			continue
		}
		seen[r.s.Node] = true
		starts = append(starts, r.s)
	}
	var started map[store.Node]int
	err := e.out.ride(ctx, func(ctx context.Context) error {
		var err error
		started, err = e.st.StartQueuedMany(ctx, e.be.pool(), e.dialect == "postgres", starts)
		return err
	})
	for _, r := range group {
		switch {
		case err != nil:
			r.alone = true
		case !r.alone:
			r.attempts = started[r.s.Node]
		}
	}
}
