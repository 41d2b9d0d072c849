package runtime

import (
	"context"
	"sync"
)

// groupCommit gathers the calls that arrive while a group is under way
// into the next group, the way River's completer completes many jobs in
// one statement: the call that finds it idle goes at once, alone, as a
// group of one; when its group no longer needs to go first (handOff) the
// calls queued meanwhile go to the first of them, which does them as the
// next group, at most max. No goroutine and no timer of its own: a lone
// call waits for nothing, and each call returns once its own group is
// done. The recorder (recorder.go) and the start group (starts.go) are
// two.
type groupCommit[T member] struct {
	max int

	mu sync.Mutex
	// commit does a group. It may call handOff once the group no longer
	// needs to go before the next one (it is called when commit returns
	// otherwise), and sets the outcome of each member.
	commit func(ctx context.Context, group []T, handOff func())
	queue  []T
	busy   bool // a group is under way; the queue waits for it
}

// member is what a group is made of: something with a turn.
type member interface{ slot() *turn }

// turn is a member's place in the queue.
type turn struct {
	done chan struct{} // closed once its group is done
	lead chan struct{} // closed when it is to do the next group
}

func (t *turn) slot() *turn { return t }

// join does m in a group and returns when the group is done.
func (g *groupCommit[T]) join(ctx context.Context, m T) {
	t := m.slot()
	t.done, t.lead = make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.queue = append(g.queue, m)
	if g.busy {
		g.mu.Unlock()
		select {
		case <-t.done:
			return
		case <-t.lead:
		}
		g.mu.Lock()
	}
	// m leads the next group, from the front of the queue (m first).
	g.busy = true
	n := min(len(g.queue), g.max)
	group := make([]T, n)
	copy(group, g.queue)
	g.queue = append(g.queue[:0:0], g.queue[n:]...)
	commit := g.commit
	g.mu.Unlock()

	handedOff := false
	handOff := func() {
		if handedOff {
			return
		}
		handedOff = true
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.queue) > 0 {
			close(g.queue[0].slot().lead)
			return
		}
		g.busy = false
	}
	// Deferred, so that a panic in commit (River recovers it as the job's
	// failure) leaves no member waiting.
	defer func() {
		handOff()
		for _, o := range group {
			if o.slot() != t {
				close(o.slot().done)
			}
		}
	}()
	commit(ctx, group, handOff)
}
