package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// The database may go away for a while: a PostgreSQL restart, a failover,
// a network cut. Every loop of the engine that outlives one request (a
// job's recording, the heartbeat, Wait, the CLI's follow loops) retries
// while the database is unreachable (IsUnreachable) instead of failing,
// and the engine says so once per outage, however many loops see it.
// Other errors fail at once, as before.

// Backoff between two tries while the database is unreachable: doubling
// from outageFirstDelay to outageMaxDelay, each wait jittered.
const (
	outageFirstDelay = 100 * time.Millisecond
	outageMaxDelay   = 5 * time.Second
)

// IsUnreachable reports whether err means the database could not be
// reached for now and the same call may succeed later: a connection
// refused, reset or lost, the server shutting down or starting up
// (SQLSTATE class 08, 57P01-57P03). A bad password, an unknown database,
// host or table, a database FlowStone has not initialised, a closed engine
// and a cancelled context are not.
func IsUnreachable(err error) bool { return store.Unreachable(err) }

// outage is an engine's view of its database's reachability, shared by
// its loops.
type outage struct {
	log *slog.Logger
	// quit is closed when the engine gives up waiting: Close's context
	// ended, or Close returned.
	quit     chan struct{}
	quitOnce sync.Once

	mu    sync.Mutex
	since time.Time // when the current outage was first seen; zero while reachable
	// back is when the database was last reached again after an outage.
	back time.Time
	// began is when the outage that ended at back began, until ended
	// hands it out.
	began time.Time
}

func newOutage(log *slog.Logger) *outage {
	return &outage{log: log, quit: make(chan struct{})}
}

// giveUp ends every wait for the database.
func (o *outage) giveUp() { o.quitOnce.Do(func() { close(o.quit) }) }

// down records that the database could not be reached, saying so when an
// outage starts.
func (o *outage) down(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = time.Now()
		o.log.Warn("database unreachable, retrying: " + err.Error())
	}
}

// up records that the database answered, saying so when an outage ends.
func (o *outage) up() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	o.back, o.began = time.Now(), o.since
	o.log.Warn(fmt.Sprintf("database reachable again after %s", roundOutage(o.back.Sub(o.since))))
	o.since = time.Time{}
}

// settled reports whether the database has been reachable for at least d
// (or no outage was ever seen): others that lost it too had time to
// report in again.
func (o *outage) settled(d time.Duration) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.since.IsZero() && (o.back.IsZero() || time.Since(o.back) >= d)
}

// ended returns when the last outage that ended began, once: the jobs
// fetched before it may have lost their fetch's answer (orphans.go).
func (o *outage) ended() (began time.Time, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	began, o.began = o.began, time.Time{}
	return began, !began.IsZero()
}

func roundOutage(d time.Duration) time.Duration {
	if d >= 10*time.Second {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}

// ride runs fn until it returns anything but an unreachable database,
// waiting between tries with capped, jittered backoff. It stops waiting
// when ctx ends or the engine gives up (Close), returning fn's last error.
// A nil outage does not retry.
func (o *outage) ride(ctx context.Context, fn func(context.Context) error) error {
	delay := outageFirstDelay
	// Only a call that failed for the outage and then got through says
	// the database is back: fn may succeed without touching the database
	// (an asset with nothing to read), which proves nothing.
	failed := false
	for {
		err := fn(ctx)
		if o == nil {
			return err
		}
		if err == nil {
			if failed {
				o.up()
			}
			return nil
		}
		if !store.Unreachable(err) || ctx.Err() != nil {
			return err
		}
		failed = true
		o.down(err)
		if !o.pause(ctx, delay) {
			return err
		}
		delay = min(delay*2, outageMaxDelay)
	}
}

// pause waits about d (between d/2 and d); false when ctx ended or the
// engine gave up first.
func (o *outage) pause(ctx context.Context, d time.Duration) bool {
	d = d/2 + rand.N(d/2+1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-o.quit:
		return false
	case <-t.C:
		return true
	}
}

// RetryUnreachable runs fn until it succeeds or fails with an error other
// than an unreachable database (IsUnreachable). While the database is
// unreachable it tries again with capped, jittered backoff (up to 5s
// apart), and the engine logs the outage once, at its start ("database
// unreachable, retrying: ...") and its end ("database reachable again
// after 12s"), however many loops ride it out. It returns fn's last error
// when ctx ends or the engine closes first. The engine's own loops (jobs
// recording their results, the heartbeat, Wait) ride out outages this way;
// use it for loops of your own.
func (e *Engine) RetryUnreachable(ctx context.Context, fn func(ctx context.Context) error) error {
	return e.out.ride(ctx, fn)
}

// waitForDatabase runs connect until it succeeds, fails otherwise than
// with an unreachable database, or within has passed.
func (o *outage) waitForDatabase(ctx context.Context, within time.Duration, connect func(context.Context) error) error {
	if within <= 0 {
		return connect(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	err := o.ride(wctx, connect)
	if err != nil && store.Unreachable(err) && ctx.Err() == nil {
		return fmt.Errorf("%w after waiting %s: %w", ErrDatabaseUnreachable, within, err)
	}
	return err
}

// isDown reports whether an outage is going on.
func (o *outage) isDown() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.since.IsZero()
}

// outageLogs lowers River's warnings and errors to debug while the engine
// knows the database is unreachable: River's services each log every
// failed try, and the engine has said it once already.
type outageLogs struct {
	slog.Handler
	o *outage
}

func (h outageLogs) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && h.o.isDown() {
		r.Level = slog.LevelDebug
		if !h.Handler.Enabled(ctx, r.Level) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h outageLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return outageLogs{h.Handler.WithAttrs(attrs), h.o}
}

func (h outageLogs) WithGroup(name string) slog.Handler {
	return outageLogs{h.Handler.WithGroup(name), h.o}
}
