package runtime

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// task is one job's materialization, offered to the asset's strategy. It
// implements strategy.Task, flowstone.Recorder and the Inputs' source.
type task struct {
	e        *Engine
	b        Binding
	run      *runCtx
	asset    *AssetDef
	part     flowstone.Partition
	attempts int
	// redelivered: the job ran before (Redelivered).
	redelivered bool
	config      any
	hasConfig   bool
	log         *slog.Logger
	logs        *logCapture // what log keeps for the attempt's record

	ups     []upstream // loaded on first use
	resumes []river.InsertManyParams
	in      *Inputs // shared by Call and CallItem, so values load once

	mu   sync.Mutex
	meta map[string]any
}

var (
	_ strategy.Task      = (*task)(nil)
	_ flowstone.Recorder = (*task)(nil)
	_ inputSource        = (*task)(nil)
)

type assetView struct {
	a        *AssetDef
	pipeline string
}

func (v assetView) Key() string      { return v.a.Key }
func (v assetView) Pipeline() string { return v.pipeline }
func (v assetView) HasValue() bool   { return v.a.HasValue }

func (t *task) Asset() strategy.Asset          { return assetView{t.asset, t.run.p.name} }
func (t *task) RunID() string                  { return t.run.id }
func (t *task) Partition() flowstone.Partition { return t.part }
func (t *task) Attempt() int                   { return t.attempts }
func (t *task) FinalAttempt() bool             { return t.attempts >= t.asset.Retries+1 }

// AddMetadata implements flowstone.Recorder.
func (t *task) AddMetadata(key string, value any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.meta[key] = value
}

// Logger implements flowstone.Recorder.
func (t *task) Logger() *slog.Logger { return t.log }

// Identity implements flowstone.IdentityOf's view of the task.
func (t *task) Identity() flowstone.Identity {
	return flowstone.Identity{Pipeline: t.run.p.name, RunID: t.run.id, Asset: t.asset.Key, Partition: t.part, Attempt: t.attempts}
}

// UpdateMetadata implements flowstone.UpdateMetadata.
func (t *task) UpdateMetadata(key string, update func(old any) any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.meta[key] = update(t.meta[key])
}

func (t *task) metadata() map[string]any {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.meta
}

// Call runs the generated wrapper with this task as its input source.
func (t *task) Call(ctx context.Context) (v any, err error) {
	return t.call(ctx, nil)
}

// CallItem runs the wrapper for one scatter item.
func (t *task) CallItem(ctx context.Context, item json.RawMessage) (any, error) {
	if item == nil {
		item = json.RawMessage("null")
	}
	v, err := t.call(ctx, item)
	if t.e.tel != nil {
		t.e.tel.scatterItem(ctx, t, err)
	}
	return v, err
}

func (t *task) call(ctx context.Context, item []byte) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	if t.in == nil {
		t.in = &Inputs{asset: t.asset.Key, partition: t.part, resources: t.b.resources, config: t.config,
			hasConfig: t.hasConfig, src: t, cache: map[string]any{}}
	}
	t.in.item = item
	return t.asset.Run(flowstone.WithRecorder(ctx, t), t.in)
}

// DB implements strategy.Task.
func (t *task) DB() strategy.Querier { return t.e.be.pool() }

// InTx implements strategy.Task.
func (t *task) InTx(ctx context.Context, fn func(ctx context.Context, q strategy.Querier) error) error {
	return t.e.be.inTx(ctx, func(tx txn) error { return fn(ctx, tx) })
}

// Write implements strategy.Task: fn's statements run on the pool, each
// committing on its own; fn runs again when one collided (as inTx does)
// or the database could not be reached (riding the outage out).
func (t *task) Write(ctx context.Context, fn func(ctx context.Context, q strategy.Querier) error) error {
	return t.e.out.ride(ctx, func(ctx context.Context) error {
		for attempt := 1; ; attempt++ {
			err := fn(ctx, t.e.be.pool())
			if err == nil || !store.Retryable(err) || attempt == 8 {
				return err
			}
			if err := sleep(ctx, time.Duration(attempt*attempt)*5*time.Millisecond); err != nil {
				return err
			}
		}
	})
}

// Redelivered implements strategy.Task.
func (t *task) Redelivered() bool { return t.redelivered }

// redelivered reports whether job ran before: an attempt counted before
// this one, another fetch of it, or an error recorded (a takeover's).
func redelivered(job *rivertype.JobRow) bool {
	return job.Attempt > 1 || len(job.AttemptedBy) > 1 || len(job.Errors) > 0
}

// ItemKeys implements strategy.Task.
func (t *task) ItemKeys(items []json.RawMessage) ([]string, error) { return t.asset.Item.keys(items) }

// RetryDelay implements strategy.Task.
func (t *task) RetryDelay(attempt int) time.Duration { return t.e.cfg.RetryDelay(attempt) }

// Retries implements strategy.Task.
func (t *task) Retries() int { return t.asset.Retries }

// view implements inputSource: a named view of the upstream's
// materialization in this run.
func (t *task) view(ctx context.Context, asset, name string, into any) error {
	ups, err := t.upstreams(ctx)
	if err != nil {
		return err
	}
	u, ok := find(ups, asset)
	if !ok || !u.status.ok() || u.mat == "" {
		return fmt.Errorf("%w: %s has no materialization in run %s", ErrNotMaterialized, asset, t.run.id)
	}
	var views sql.NullString
	err = t.e.out.ride(ctx, func(ctx context.Context) (err error) {
		views, err = t.e.st.Views(ctx, t.e.be.pool(), u.mat)
		return err
	})
	if err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if views.Valid {
		if err := json.Unmarshal([]byte(views.String), &all); err != nil {
			return fmt.Errorf("%w: views of %s: %v", ErrDecode, u.mat, err)
		}
	}
	raw, ok := all[name]
	if !ok {
		return fmt.Errorf("%w: materialization %s of %s has no %s view", ErrNotMaterialized, u.mat, asset, name)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%w: %s view of asset %s materialization %s into %T: %v", ErrDecode, name, asset, u.mat, into, err)
	}
	return nil
}

// Peers implements strategy.Task.
func (t *task) Peers() []strategy.Peer {
	out := make([]strategy.Peer, len(t.run.p.assets))
	for i, a := range t.run.p.assets {
		out[i] = strategy.Peer{Key: a.Key, Strategy: a.Strategy}
	}
	return out
}

func (t *task) upstreams(ctx context.Context) ([]upstream, error) {
	if t.ups != nil {
		return t.ups, nil
	}
	if len(t.asset.Deps) == 0 {
		// A run's edges come from Deps: a root has no upstream to read.
		t.ups = []upstream{}
		return t.ups, nil
	}
	var ups []upstream
	err := t.e.out.ride(ctx, func(ctx context.Context) (err error) {
		ups, err = t.e.loadUpstreams(ctx, t.e.be.pool(), t.run, t.asset, t.part)
		return err
	})
	if err != nil {
		return nil, err
	}
	if ups == nil {
		ups = []upstream{}
	}
	t.ups = ups
	return ups, nil
}

func (t *task) Upstream(ctx context.Context, asset string) (strategy.UpstreamState, error) {
	ups, err := t.upstreams(ctx)
	if err != nil {
		return strategy.UpstreamState{}, err
	}
	u, ok := find(ups, asset)
	if !ok {
		return strategy.UpstreamState{}, fmt.Errorf("%w: %s is not an upstream of %s in this run", ErrUnknownAsset, asset, t.asset.Key)
	}
	return strategy.UpstreamState{Asset: u.asset, Partition: flowstone.Partition(u.partition), Status: string(u.status), Error: u.err}, nil
}

func (t *task) LoadValue(ctx context.Context, asset string, into any) error {
	return t.value(ctx, asset, into)
}

// value implements inputSource: the upstream's materialization in this run.
func (t *task) value(ctx context.Context, asset string, into any) error {
	ups, err := t.upstreams(ctx)
	if err != nil {
		return err
	}
	u, ok := find(ups, asset)
	if !ok {
		return fmt.Errorf("%w: %s is not an upstream of %s in this run", ErrUnknownAsset, asset, t.asset.Key)
	}
	if !u.status.ok() || u.mat == "" {
		return fmt.Errorf("%w: %s is %s in run %s", ErrNotMaterialized, asset, u.status, t.run.id)
	}
	return t.e.loadMaterialization(ctx, t.run.p, asset, u.mat, into)
}

func (t *task) outcome(ctx context.Context, asset string) (upstreamOutcome, error) {
	ups, err := t.upstreams(ctx)
	if err != nil {
		return upstreamOutcome{}, err
	}
	u, ok := find(ups, asset)
	if !ok {
		return upstreamOutcome{}, fmt.Errorf("%w: %s is not an upstream of %s in this run", ErrUnknownAsset, asset, t.asset.Key)
	}
	switch {
	case u.status == StatusSkipped:
		return upstreamOutcome{skipped: true}, nil
	case u.status.ok():
		return upstreamOutcome{}, nil
	case !u.status.Terminal():
		return upstreamOutcome{unfinished: true, errMsg: string(u.status)}, nil
	}
	msg := u.err
	if msg == "" {
		msg = string(u.status)
	}
	return upstreamOutcome{errMsg: msg}, nil
}

// partitions implements inputSource for map[Partition]T dependencies: every
// partition of asset with a successful materialization, newest of each,
// when the upstream is partitioned; its single "" key otherwise.
func (t *task) partitions(ctx context.Context, asset string, fn func(flowstone.Partition, func(any) error) error) error {
	ups, err := t.upstreams(ctx)
	if err != nil {
		return err
	}
	if _, inRun := find(ups, asset); inRun {
		// The partitions this one covers, as materialized (or reused) in
		// this run.
		for _, u := range ups {
			if u.asset != asset || !u.status.ok() || u.mat == "" {
				continue
			}
			id := u.mat
			if err := fn(flowstone.Partition(u.partition), func(into any) error {
				return t.e.loadMaterialization(ctx, t.run.p, asset, id, into)
			}); err != nil {
				return err
			}
		}
		return nil
	}
	var list []store.PartitionMaterialization
	err = t.e.out.ride(ctx, func(ctx context.Context) (err error) {
		list, err = t.e.st.LatestSucceededByPartition(ctx, t.e.be.pool(), t.run.p.name, asset)
		return err
	})
	if err != nil {
		return err
	}
	for _, x := range list {
		id := x.ID
		if err := fn(flowstone.Partition(x.Partition), func(into any) error {
			return t.e.loadMaterialization(ctx, t.run.p, asset, id, into)
		}); err != nil {
			return err
		}
	}
	return nil
}

// previous implements inputSource: the newest successful materialization of
// the asset's previous partition, when its set has an order.
func (t *task) previous(ctx context.Context, into any) (flowstone.Partition, bool, error) {
	ts, ok := t.asset.Partitions.(flowstone.TimeWindowSet)
	if !ok {
		return "", false, fmt.Errorf("asset %s: Previous needs a time partition set", t.asset.Key)
	}
	prev, ok := ts.Previous(t.part)
	if !ok {
		return "", false, nil
	}
	id, err := t.e.latestMaterialization(ctx, t.run.p.name, t.asset.Key, prev)
	if errors.Is(err, ErrNotMaterialized) {
		return prev, false, nil
	}
	if err != nil {
		return "", false, err
	}
	if err := t.e.loadMaterialization(ctx, t.run.p, t.asset.Key, id, into); err != nil {
		return "", false, err
	}
	return prev, true, nil
}

func (t *task) ref() Ref { return Ref{RunID: t.run.id, Asset: t.asset.Key, Partition: t.part} }

func (t *task) LoadState(ctx context.Context, name string, into any) (bool, error) {
	data, found, err := t.e.st.State(ctx, t.e.be.pool(), t.node(), name)
	if err != nil || !found {
		return false, err
	}
	if into != nil {
		if err := json.Unmarshal([]byte(data), into); err != nil {
			return true, fmt.Errorf("state %s of %s: %w", name, t.ref(), err)
		}
	}
	return true, nil
}

func (t *task) SaveState(ctx context.Context, name string, value any) (bool, error) {
	data, err := json.Marshal(value)
	if err != nil {
		return false, fmt.Errorf("state %s: %w", name, err)
	}
	return t.e.st.SaveState(ctx, t.e.be.pool(), t.node(), name, string(data))
}

// node is the task's node in its run.
func (t *task) node() store.Node {
	return store.Node{Run: t.run.id, Asset: t.asset.Key, Partition: string(t.part)}
}

// Resume schedules a continuation; it is inserted in the transaction that
// records this job's result, so it exists only if that result does.
func (t *task) Resume(_ context.Context, at time.Time, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("resume payload: %w", err)
	}
	if string(data) == "null" {
		data = []byte("{}")
	}
	t.resumes = append(t.resumes, t.e.resumeJob(t.run, t.asset, t.part, data, at))
	return nil
}
