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
