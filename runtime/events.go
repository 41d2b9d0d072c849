package runtime

import (
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
)

// EventKind names what happened.
type EventKind string

// Event kinds.
const (
	EventRunStarted    EventKind = "run_started"
	EventAssetStarted  EventKind = "asset_started"
	EventAssetRetrying EventKind = "asset_retrying"
	EventAssetFinished EventKind = "asset_finished"
	EventAssetWaiting  EventKind = "asset_waiting"
	EventRunFinished   EventKind = "run_finished"
	// EventAssetOverdue: an asset with a freshness bound became overdue
	// (Error says why); EventAssetFresh: it is fresh again. Published by
	// the process that evaluates automation (see
	// Config.AutomationInterval), once per change.
	EventAssetOverdue EventKind = "asset_overdue"
	EventAssetFresh   EventKind = "asset_fresh"
)

// Event reports progress seen by this process: work it did, runs it
// started, runs it saw finish. Other processes' work shows in the database
// (Engine.Run), not here.
type Event struct {
	Kind      EventKind
	Time      time.Time
	Pipeline  string
	RunID     string
	Asset     string
	Partition flowstone.Partition
	// Status is the asset's status (for asset events) or the run's.
	Status string
	Error  string
}

// broker fans events out to subscribers without ever blocking the engine: a
// subscriber whose buffer is full misses events.
type broker struct {
	mu     sync.Mutex
	subs   map[chan Event]struct{}
	closed bool
	// observe, when set, sees every event first (telemetry).
	observe func(Event)
}

func newBroker() *broker { return &broker{subs: map[chan Event]struct{}{}} }

func (b *broker) publish(evs ...Event) {
	if len(evs) == 0 {
		return
	}
	for i := range evs {
		if evs[i].Time.IsZero() {
			evs[i].Time = time.Now()
		}
		if b.observe != nil {
			b.observe(evs[i])
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range evs {
		for ch := range b.subs {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

func (b *broker) subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, buffer)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(ch)
		return ch, func() {}
	}
	b.subs[ch] = struct{}{}
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if _, ok := b.subs[ch]; ok {
				delete(b.subs, ch)
				close(ch)
			}
		})
	}
}

func (b *broker) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		close(ch)
	}
}

// Subscribe returns a channel of this process's events and a function that
// ends the subscription. Events are dropped for a subscriber whose buffer
// (default 256) is full; the database stays the source of truth.
func (e *Engine) Subscribe(buffer int) (<-chan Event, func()) {
	if buffer <= 0 {
		buffer = 256
	}
	return e.events.subscribe(buffer)
}
