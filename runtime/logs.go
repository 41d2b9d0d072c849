package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// LogLimit is how much of what asset code logs one job of an attempt keeps
// in the database (a resumed attempt keeps as much again per
// continuation); past it lines are dropped and a marker line says so. The
// process's own logger still receives every line.
const LogLimit = 64 << 10

// truncatedMessage is the marker line's message.
const truncatedMessage = "flowstone: log truncated: the attempt logged more than 64 KiB"

// LogAttempt is what one attempt of an asset logged through
// flowstone.Logger, at Info level and above.
type LogAttempt struct {
	Ref Ref
	// Attempt counts from 1, as flowstone.Identity's does.
	Attempt int
	Lines   []LogLine
	// Truncated says lines were dropped past LogLimit; the last line is a
	// marker saying so.
	Truncated bool
}

// LogLine is one logged record.
type LogLine struct {
	Time    time.Time
	Level   slog.Level
	Message string
	// Attrs are the record's attributes as JSON decodes them (groups are
	// nested maps), without the run, asset and partition that Ref holds.
	Attrs map[string]any
}

// Logs returns what asset code logged in run ref.RunID, attempt by
// attempt: of every asset and partition when ref.Asset is "", else of
// ref's node, which must be in the run (ErrNotInRun otherwise). A run that
// does not exist matches ErrRunNotFound.
func (e *Engine) Logs(ctx context.Context, ref Ref) ([]LogAttempt, error) {
	q := e.be.pool()
	if err := ref.valid(); err != nil {
		return nil, err
	}
	if ref.Asset == "" {
		if _, found, err := e.st.RunPipeline(ctx, q, ref.RunID); err != nil {
			return nil, err
		} else if !found {
			return nil, fmt.Errorf("%w: %q", ErrRunNotFound, ref.RunID)
		}
	} else if _, err := e.resolveRef(ctx, q, ref); err != nil {
		return nil, err
	}
	chunks, err := e.st.Logs(ctx, q, ref.RunID, ref.Asset, string(ref.Partition), ref.Asset == "")
	if err != nil {
		return nil, fmt.Errorf("logs of run %s: %w", ref.RunID, err)
	}
	var out []LogAttempt
	for _, c := range chunks {
		r := Ref{RunID: c.Run, Asset: c.Asset, Partition: flowstone.Partition(c.Partition)}
		if n := len(out); n == 0 || out[n-1].Ref != r || out[n-1].Attempt != c.Attempt {
			out = append(out, LogAttempt{Ref: r, Attempt: c.Attempt})
		}
		la := &out[len(out)-1]
		la.Truncated = la.Truncated || c.Truncated
		la.Lines = append(la.Lines, parseLogLines(c.Lines)...)
	}
	return out, nil
}

// parseLogLines decodes the JSON lines slog wrote; a line that does not
// decode is kept as its text.
func parseLogLines(s string) []LogLine {
	var out []LogLine
	for _, raw := range bytes.Split([]byte(s), []byte("\n")) {
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			out = append(out, LogLine{Message: string(raw)})
			continue
		}
		var l LogLine
		if v, ok := m[slog.TimeKey].(string); ok {
			l.Time, _ = time.Parse(time.RFC3339Nano, v)
		}
		if v, ok := m[slog.LevelKey].(string); ok {
			_ = l.Level.UnmarshalText([]byte(v))
		}
		l.Message, _ = m[slog.MessageKey].(string)
		delete(m, slog.TimeKey)
		delete(m, slog.LevelKey)
		delete(m, slog.MessageKey)
		if len(m) > 0 {
			l.Attrs = m
		}
		out = append(out, l)
	}
	return out
}

// logCapture keeps what one job of an attempt logs, up to LogLimit, for
// saveLogs to store in one statement once the attempt is over.
type logCapture struct {
	mu        sync.Mutex
	buf       []byte
	truncated bool
}

// markerRoom is kept free for the line that ends a truncated capture.
const markerRoom = 256

// Write implements io.Writer for slog's JSON handler, which writes one
// whole line per record.
func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.truncated {
		return len(p), nil
	}
	if len(c.buf)+len(p) > LogLimit-markerRoom {
		c.truncated = true
		line, _ := json.Marshal(map[string]string{slog.TimeKey: time.Now().Format(time.RFC3339Nano),
			slog.LevelKey: slog.LevelWarn.String(), slog.MessageKey: truncatedMessage})
		c.buf = append(append(c.buf, line...), '\n')
		return len(p), nil
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// assetLogger returns the logger asset code gets through flowstone.Logger:
// it writes to the engine's logger, with the run, pipeline, asset and
// partition, and to a capture the attempt stores.
func (e *Engine) assetLogger(t *task) (*slog.Logger, *logCapture) {
	c := &logCapture{}
	proc := e.log.With("run", t.run.id, "pipeline", t.run.p.name, "asset", t.asset.Key, "partition", string(t.part)).Handler()
	return slog.New(teeHandler{proc, slog.NewJSONHandler(c, nil)}), c
}

// saveLogs stores what t logged in job, if anything. Logs are worth less than the
// attempt's outcome: an error to store them is logged, not returned.
func (e *Engine) saveLogs(ctx context.Context, t *task, job int64) {
	c := t.logs
	if c == nil {
		return
	}
	c.mu.Lock()
	chunk := store.LogChunk{Node: t.node(), Attempt: t.attempts, Job: job, Truncated: c.truncated, Lines: string(c.buf)}
	c.mu.Unlock()
	if chunk.Lines == "" {
		return
	}
	if err := e.out.ride(ctx, func(ctx context.Context) error { return e.st.SaveLogs(ctx, e.be.pool(), chunk) }); err != nil {
		e.log.WarnContext(ctx, "store asset logs", "run", t.run.id, "asset", t.asset.Key, "partition", string(t.part), "error", err)
	}
}

// teeHandler hands each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	if h.a.Enabled(ctx, r.Level) {
		errs = append(errs, h.a.Handle(ctx, r.Clone()))
	}
	if h.b.Enabled(ctx, r.Level) {
		errs = append(errs, h.b.Handle(ctx, r))
	}
	return errors.Join(errs...)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}

func (h teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{h.a.WithGroup(name), h.b.WithGroup(name)}
}
