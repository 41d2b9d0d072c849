package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/riverqueue/river"
)

// Backfill errors callers branch on.
var (
	// ErrBackfillNotFound: no backfill with that ID.
	ErrBackfillNotFound = errors.New("backfill not found")
	// ErrBadBackfill: the request's partitions cannot be listed.
	ErrBadBackfill = errors.New("bad backfill request")
)

// BackfillRequest asks for the targets over many partitions.
type BackfillRequest struct {
	// Targets and Select choose the targets, with their upstream
	// closure, as in Request.
	Targets []string
	Select  string
	// Partitions lists the keys; or leave it empty and give From and To
	// (inclusive) for a range of a time partition set (or of a static
	// set's keys in declaration order).
	Partitions []flowstone.Partition
	From, To   flowstone.Partition
	// MaxConcurrent bounds how many partitions run at once; zero means 4.
	MaxConcurrent int
	// Config is every run's config.
	Config any
	// Force recomputes the targets in every partition, as in Request.
	Force bool
}

// BackfillStatus is a backfill's progress.
type BackfillStatus struct {
	ID       string
	Pipeline string
	// Status is running, succeeded (every partition's run succeeded),
	// failed or cancelled.
	Status                                     string
	Total, Pending, Running, Succeeded, Failed int
	Cancelled                                  int
	CreatedAt, FinishedAt                      time.Time
	// Partitions by key: pending, running, succeeded, failed, cancelled.
	Partitions map[flowstone.Partition]string
	// Order lists the keys in backfill order.
	Order []flowstone.Partition
}

// Backfill starts a backfill: one record with a row per partition, run by
// up to MaxConcurrent runs at a time. Each finished run moves it on through
// a job in the database, so it goes on after every process restarted.
// Partitions whose assets are up to date are reused unless Force.
func (e *Engine) Backfill(ctx context.Context, p *Pipeline, req BackfillRequest) (string, error) {
	if err := e.writable(); err != nil {
		return "", err
	}
	if e.closed.Load() {
		return "", ErrClosed
	}
	targets, err := p.targets(req.Targets, req.Select)
	if err != nil {
		return "", err
	}
	req.Targets = targets
	assets, err := p.Closure(req.Targets)
	if err != nil {
		return "", err
	}
	keys, clipped, err := backfillKeys(p, assets, req)
	if clipped != "" {
		e.log.WarnContext(ctx, "backfill range clipped: the later partitions have not ended yet", "pipeline", p.name, "to", req.To, "ends_at", clipped)
	}
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadBackfill, err)
	}
	for _, k := range keys {
		if _, err := e.plan(ctx, p, assets, req.Targets, k); err != nil {
			return "", err
		}
	}
	var cfgJSON []byte
	if req.Config != nil {
		if p.config == nil {
			return "", fmt.Errorf("%w: pipeline %s takes no config, got %T", ErrBadConfig, p.name, req.Config)
		}
		if cfgJSON, err = p.config.Encode(req.Config); err != nil {
			return "", err
		}
		if err := e.checkConfigSize(p, cfgJSON); err != nil {
			return "", err
		}
	} else {
		for _, a := range assets {
			if a.UsesConfig {
				return "", fmt.Errorf("%w: asset %s takes a %s; set BackfillRequest.Config", ErrMissingConfig, a.Key, p.config.typeName)
			}
		}
	}
	conc := req.MaxConcurrent
	if conc <= 0 {
		conc = 4
	}
	// An asset reading its own previous partition needs that partition
	// done first: such a backfill runs its partitions in order.
	for _, a := range assets {
		for _, d := range a.Deps {
			if d.Kind == DepPrevious && conc > 1 {
				e.log.InfoContext(ctx, "backfill runs one partition at a time: an asset reads its previous partition", "asset", a.Key)
				conc = 1
			}
		}
	}
	targetsJSON, _ := json.Marshal(req.Targets)
	id := newID("bf_")
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = string(k)
	}
	err = e.be.inTx(ctx, func(tx txn) error {
		if err := e.st.InsertBackfill(ctx, tx, store.NewBackfill{ID: id, Pipeline: p.name, Targets: string(targetsJSON), Config: cfgJSON,
			Force: req.Force, MaxConcurrent: conc, Partitions: parts}); err != nil {
			return err
		}
		return tx.insertJobs(ctx, []river.InsertManyParams{backfillJob(p.name, id)})
	})
	if err != nil {
		return "", fmt.Errorf("backfill %s: %w", p.name, err)
	}
	e.log.InfoContext(ctx, "backfill started", "backfill", id, "pipeline", p.name, "partitions", len(keys))
	return id, nil
}

// backfillKeys lists the request's partitions. A range of a time set whose
// end has not happened yet is clipped at the set's newest partition, which
// clipped returns.
func backfillKeys(p *Pipeline, assets []*AssetDef, req BackfillRequest) (keys []flowstone.Partition, clipped flowstone.Partition, err error) {
	if len(req.Partitions) > 0 {
		seen := map[flowstone.Partition]bool{}
		for _, k := range req.Partitions {
			if seen[k] {
				return nil, "", fmt.Errorf("partition %q listed twice", k)
			}
			seen[k] = true
		}
		return req.Partitions, "", nil
	}
	// The keys are the targets' (an upstream may be finer: hourly under
	// a daily target).
	var set flowstone.PartitionSet
	targets := req.Targets
	if len(targets) == 0 {
		for _, a := range assets {
			targets = append(targets, a.Key)
		}
	}
	for _, t := range targets {
		if a := p.Asset(t); a != nil && a.Partitions != nil {
			set = a.Partitions
			break
		}
	}
	if set == nil {
		return nil, "", errors.New("the targets are unpartitioned")
	}
	if req.From == "" || req.To == "" {
		return nil, "", fmt.Errorf("give Partitions, or From and To (e.g. %q)", set.Example())
	}
	if ts, ok := set.(flowstone.TimeWindowSet); ok && errors.Is(set.Validate(req.To), flowstone.ErrFuturePartition) {
		if last, ok := ts.Last(time.Now()); ok && set.Validate(req.From) == nil {
			req.To, clipped = last, last
		}
	}
	for _, k := range []flowstone.Partition{req.From, req.To} {
		if err := set.Validate(k); err != nil {
			return nil, "", fmt.Errorf("%w", err)
		}
	}
	switch s := set.(type) {
	case flowstone.TimeWindowSet:
		from, _, _ := s.Window(req.From)
		to, _, _ := s.Window(req.To)
		if to.Before(from) {
			return nil, "", fmt.Errorf("%q is before %q", req.To, req.From)
		}
		for k, ok := req.From, true; ok; k, ok = s.Next(k) {
			keys = append(keys, k)
			if k == req.To {
				return keys, clipped, nil
			}
		}
		return nil, "", fmt.Errorf("%q is past the set's end", req.To)
	case interface{ Keys() []flowstone.Partition }:
		in := false
		for _, k := range s.Keys() {
			in = in || k == req.From
			if in {
				keys = append(keys, k)
			}
			if in && k == req.To {
				return keys, clipped, nil
			}
		}
		return nil, "", fmt.Errorf("%q does not come after %q in the set", req.To, req.From)
	}
	return nil, "", fmt.Errorf("a %s set has no ranges; list the partitions", set.Kind())
}

// advanceBackfill brings a backfill's partitions up to date with their
// runs and launches pending ones up to its concurrency; the last to finish
// finishes it. Launches use run keys, so a repeated advance starts nothing
// twice: a partition left launching by an advance that died is launched
// again, which finds its run if it had started.
func (e *Engine) advanceBackfill(ctx context.Context, p *Pipeline, id string) error {
	q := e.be.pool()
	bf, found, err := e.st.Backfill(ctx, q, id)
	if err != nil {
		return err
	}
	if !found {
		return river.JobCancel(fmt.Errorf("%w: %s", ErrBackfillNotFound, id))
	}
	if bf.Status != store.BackfillRunning {
		return e.st.RefreshBackfill(ctx, q, id)
	}
	var targets []string
	_ = json.Unmarshal([]byte(bf.Targets), &targets)
	// The backfill's config, checked when it was recorded, goes to each
	// run as it is stored.
	var config []byte
	if bf.Config.Valid && p.config != nil {
		config = []byte(bf.Config.String)
	}
	// Partitions found launching when the advance starts were left so by
	// one that died (or are being launched by another: launching twice
	// starts one run). They are launched again first.
	stuck, err := e.st.CountPartitions(ctx, q, id, store.PartitionLaunching)
	if err != nil {
		return err
	}
	for {
		// Claim the next partition under the backfill row's lock, so
		// concurrent advances never exceed MaxConcurrent.
		var part store.BackfillPartition
		var running int
		claimed := false
		err := e.be.inTx(ctx, func(tx txn) error {
			claimed = false
			if err := e.st.LockBackfill(ctx, tx, id); err != nil {
				return err
			}
			if err := e.st.RefreshBackfill(ctx, tx, id); err != nil {
				return err
			}
			var err error
			if stuck > 0 {
				part, claimed, err = e.st.NextPartition(ctx, tx, id, store.PartitionLaunching)
				if err != nil || claimed {
					return err
				}
			}
			if running, err = e.st.CountPartitions(ctx, tx, id, store.PartitionRunning, store.PartitionLaunching); err != nil {
				return err
			}
			if running >= bf.MaxConcurrent {
				return nil
			}
			part, claimed, err = e.st.NextPartition(ctx, tx, id, store.PartitionPending)
			if err != nil || !claimed {
				return err
			}
			_, err = e.st.SetPartition(ctx, tx, id, part.Index, store.PartitionPending, store.PartitionLaunching, "")
			return err
		})
		if err != nil {
			return err
		}
		if !claimed {
			if running >= bf.MaxConcurrent {
				return nil
			}
			return e.finishBackfill(ctx, id, running)
		}
		if part.Status == store.PartitionLaunching {
			stuck--
		}
		run, err := e.materialize(ctx, p, Request{Targets: targets, Partition: flowstone.Partition(part.Key), rawConfig: config,
			Force: bf.Force, RunKey: "backfill:" + id + ":" + part.Key}, id)
		if err != nil {
			if !refused(err) { // this process is closing, or the database failed: later
				_, _ = e.st.SetPartition(context.WithoutCancel(ctx), q, id, part.Index, store.PartitionLaunching, store.PartitionPending, "")
				return err
			}
			_, _ = e.st.SetPartition(ctx, q, id, part.Index, store.PartitionLaunching, store.PartitionFailed, "")
			e.log.ErrorContext(ctx, "backfill partition refused", "backfill", id, "partition", part.Key, "error", err)
			continue
		}
		// A run that finished within Materialize (all reused) is recorded
		// finished by the next advance, which its finish enqueued. Another
		// advance may have launched the partition again (and found its
		// run) and recorded it first.
		if _, err := e.st.SetPartition(ctx, q, id, part.Index, store.PartitionLaunching, store.PartitionRunning, run.ID); err != nil {
			return err
		}
	}
}

// finishBackfill marks it finished once no partition is left running.
func (e *Engine) finishBackfill(ctx context.Context, id string, running int) error {
	if running > 0 {
		return nil
	}
	failed, err := e.st.CountPartitions(ctx, e.be.pool(), id, store.PartitionPending, store.PartitionFailed, store.PartitionCancelled,
		store.PartitionRunning, store.PartitionLaunching)
	if err != nil {
		return err
	}
	final := store.BackfillSucceeded
	if failed > 0 {
		final = store.BackfillFailed
	}
	finished, err := e.st.FinishBackfill(ctx, e.be.pool(), id, final)
	if err == nil && finished {
		e.log.InfoContext(ctx, "backfill finished", "backfill", id, "status", final)
	}
	return err
}

// BackfillStatus reads a backfill's progress.
func (e *Engine) BackfillStatus(ctx context.Context, id string) (BackfillStatus, error) {
	q := e.be.pool()
	b := BackfillStatus{ID: id, Partitions: map[flowstone.Partition]string{}}
	if err := flowstone.ValidateKey("backfill ID", id); err != nil {
		return b, err
	}
	bf, found, err := e.st.Backfill(ctx, q, id)
	if err != nil {
		return b, err
	}
	if !found {
		return b, fmt.Errorf("%w: %s", ErrBackfillNotFound, id)
	}
	b.Pipeline, b.Status = bf.Pipeline, string(bf.Status)
	b.CreatedAt, b.FinishedAt = time.UnixMicro(bf.CreatedAt), micros(bf.FinishedAt)
	parts, err := e.st.BackfillPartitions(ctx, q, id)
	if err != nil {
		return b, err
	}
	for _, p := range parts {
		st := p.Status
		if (st == store.PartitionRunning || st == store.PartitionLaunching) && p.RunStatus != "" && p.RunStatus != store.RunRunning {
			st = store.PartitionStatus(p.RunStatus) // finished; the next advance records it
		}
		if st == store.PartitionLaunching {
			st = store.PartitionRunning
		}
		k := flowstone.Partition(p.Key)
		b.Partitions[k] = string(st)
		b.Order = append(b.Order, k)
		b.Total++
		switch st {
		case store.PartitionPending:
			b.Pending++
		case store.PartitionRunning:
			b.Running++
		case store.PartitionSucceeded:
			b.Succeeded++
		case store.PartitionCancelled:
			b.Cancelled++
		default:
			b.Failed++
		}
	}
	return b, nil
}

// CancelBackfill stops a backfill: pending partitions are cancelled, and so
// are the runs of running ones.
func (e *Engine) CancelBackfill(ctx context.Context, id string) error {
	if err := e.writable(); err != nil {
		return err
	}
	if err := flowstone.ValidateKey("backfill ID", id); err != nil {
		return err
	}
	q := e.be.pool()
	cancelled, err := e.st.FinishBackfill(ctx, q, id, store.BackfillCancelled)
	if err != nil {
		return err
	}
	if !cancelled {
		if _, err := e.BackfillStatus(ctx, id); err != nil {
			return err
		}
		return nil // already finished
	}
	if err := e.st.SetPartitions(ctx, q, id, store.PartitionCancelled, store.PartitionPending); err != nil {
		return err
	}
	runs, err := e.st.PartitionRuns(ctx, q, id, store.PartitionRunning)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if err := e.Cancel(ctx, r); err != nil {
			return err
		}
	}
	return e.st.SetPartitions(ctx, q, id, store.PartitionCancelled, store.PartitionRunning, store.PartitionLaunching)
}

// refused reports whether Materialize rejected the request itself, so
// retrying it cannot help.
func refused(err error) bool {
	for _, target := range []error{flowstone.ErrInvalidPartition, flowstone.ErrInvalidKey, ErrBadConfig, ErrMissingConfig, ErrUnknownAsset, ErrUnknownPipeline} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
