package flowstone

import (
	"context"
	"log/slog"
)

// Recorder receives what asset code reports while it runs. The runtime
// installs one per materialization with WithRecorder; asset code reaches it
// through AddMetadata and Logger.
type Recorder interface {
	// AddMetadata records a key and a JSON-encodable value on the
	// materialization being produced.
	AddMetadata(key string, value any)
	// Logger returns a logger carrying the run, asset and partition.
	Logger() *slog.Logger
}

type recorderKey struct{}

// WithRecorder returns a context whose AddMetadata and Logger calls go to r.
func WithRecorder(ctx context.Context, r Recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

// AddMetadata attaches key=value to the materialization that ctx belongs to
// (row counts, a file's URL, a model's score). Outside a materialization it
// does nothing.
func AddMetadata(ctx context.Context, key string, value any) {
	if r, ok := ctx.Value(recorderKey{}).(Recorder); ok {
		r.AddMetadata(key, value)
	}
}

// Logger returns the logger of the materialization ctx belongs to, or
// slog.Default() outside one.
func Logger(ctx context.Context) *slog.Logger {
	if r, ok := ctx.Value(recorderKey{}).(Recorder); ok {
		return r.Logger()
	}
	return slog.Default()
}

// Identity names the materialization that asset code runs for.
type Identity struct {
	Pipeline  string
	RunID     string
	Asset     string
	Partition Partition
	// Attempt counts from 1; a retry of the same asset in the same run has
	// the same identity but a higher Attempt.
	Attempt int
}

// IdentityOf returns the identity of the materialization ctx belongs to,
// or false outside one. Clients use it for keys that must not change
// between attempts (an idempotency key: run, asset and partition).
func IdentityOf(ctx context.Context) (Identity, bool) {
	if r, ok := ctx.Value(recorderKey{}).(interface{ Identity() Identity }); ok {
		return r.Identity(), true
	}
	return Identity{}, false
}

// UpdateMetadata replaces the value of key on the materialization ctx
// belongs to with update(old), old being nil at first, atomically with
// respect to other updates, so that helpers called many times (an HTTP
// client) can keep a running summary. Outside a materialization it does
// nothing.
func UpdateMetadata(ctx context.Context, key string, update func(old any) any) {
	switch r := ctx.Value(recorderKey{}).(type) {
	case interface {
		UpdateMetadata(key string, update func(old any) any)
	}:
		r.UpdateMetadata(key, update)
	case Recorder:
		r.AddMetadata(key, update(nil))
	}
}
