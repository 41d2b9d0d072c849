package runtime

import (
	"context"
	"sync"

	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// starts groups the starts of queued nodes that arrive together (River
// hands a fetched batch of jobs to as many workers at once) into one
// statement: the first start runs its statement; those that arrive
// meanwhile wait and run in the next, together.
type starts struct {
	mu    sync.Mutex
	queue []*startReq
	busy  bool
}

type startReq struct {
	n        store.Node
	job      int64
	attempts int
	err      error
	done     chan struct{}
}

// startQueuedGrouped is store.StartQueued through the engine's group of
// starts.
func (e *Engine) startQueuedGrouped(ctx context.Context, n store.Node, job int64) (attempts int, ok bool, err error) {
	s := &e.starts
	r := &startReq{n: n, job: job, done: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	if s.busy {
		s.mu.Unlock()
		<-r.done
		return r.attempts, r.attempts > 0, r.err
	}
	s.busy = true
	for {
		batch := s.queue
		if len(batch) > store.MaxStartBatch {
			batch = batch[:store.MaxStartBatch]
		}
		s.queue = s.queue[len(batch):]
		s.mu.Unlock()
		e.runStarts(ctx, batch)
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.busy = false
			s.mu.Unlock()
			break
		}
	}
	return r.attempts, r.attempts > 0, r.err
}

// runStarts runs one statement for batch and hands each its outcome.
func (e *Engine) runStarts(ctx context.Context, batch []*startReq) {
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	if len(batch) == 1 {
		r := batch[0]
		r.err = e.out.ride(ctx, func(ctx context.Context) (err error) {
			r.attempts, _, err = e.st.StartQueued(ctx, e.be.pool(), r.n, r.job)
			return err
		})
		return
	}
	nodes, jobs := make([]store.Node, len(batch)), make([]int64, len(batch))
	for i, r := range batch {
		nodes[i], jobs[i] = r.n, r.job
	}
	var attempts []int
	err := e.out.ride(ctx, func(ctx context.Context) (err error) {
		attempts, err = e.st.StartQueuedMany(ctx, e.be.pool(), nodes, jobs)
		return err
	})
	for i, r := range batch {
		if r.err = err; err == nil {
			r.attempts = attempts[i]
		}
	}
}

const groupStarts = true
