package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/scatter"
)

// OutcomesView names the view of a scatter's value that holds every item's
// flowstone.Outcome, in source order.
const OutcomesView = "outcomes"

// Scatter is the strategy of an asset whose function runs once per item
// of Source's slice value. Its value, as dependents see it, is the slice
// of successful results in source order (or, through OutcomesView, every
// item's outcome). Persistence and orchestration live in package scatter.
type Scatter struct {
	Source           string
	Batch            int
	MaxConcurrent    int
	PerSecond        float64
	FailureThreshold float64
	// Group is when a batch commits its item results before it ends
	// (scatter.DefaultGroup when zero).
	Group scatter.Group
}

// scatterSignal is the payload of a batch's job.
type scatterSignal struct {
	Batch int `json:"batch"`
	// At is when the batch may start (rate=). River releases scheduled
	// jobs only every few seconds, so the job is scheduled up to
	// schedulerSlack early and waits for At itself.
	At time.Time `json:"at,omitzero"`
	// Items and Keys are the batch's (scatter.Launch), when it carries
	// them: its first delivery runs them without reading its batch.
	Items []json.RawMessage `json:"items,omitempty"`
	Keys  []string          `json:"keys,omitempty"`
}

// schedulerSlack covers River's scheduler interval (5s).
const schedulerSlack = 5 * time.Second

func launch(tx Tx, l scatter.Launch) error {
	return tx.Resume(l.At.Add(-schedulerSlack), scatterSignal{Batch: l.Batch, At: l.At, Items: l.Items, Keys: l.Keys})
}

func (s Scatter) orchestrator() scatter.Orchestrator {
	return scatter.Orchestrator{Plan: scatter.Plan{Batch: s.Batch, MaxConcurrent: s.MaxConcurrent,
		PerSecond: s.PerSecond, FailureThreshold: s.FailureThreshold, Group: s.Group}}
}

// Migrations implements Migrator: the scatter store's tables.
func (Scatter) Migrations() (string, fs.FS) { return "scatter", scatter.Migrations() }

// CancelRun implements RunCanceller: the run's barriers finish cancelled
// and their items not yet run are cancelled.
func (Scatter) CancelRun(ctx context.Context, q Querier, run string) error {
	return scatter.CancelRun(ctx, q, run)
}

// DeleteRuns implements RunDeleter: the runs' barriers and items go.
func (Scatter) DeleteRuns(ctx context.Context, q Querier, runs []string) error {
	return scatter.DeleteRuns(ctx, q, runs)
}

func scatterRef(t Task) scatter.Ref {
	return scatter.Ref{Run: t.RunID(), Asset: t.Asset().Key(), Partition: string(t.Partition())}
}

// Run implements Strategy: it stores the barrier and items and launches
// the first batches, in the transaction that records the asset waiting.
func (s Scatter) Run(ctx context.Context, t Task) (Result, error) {
	var items []json.RawMessage
	if err := t.LoadValue(ctx, s.Source, &items); err != nil {
		return Result{}, fmt.Errorf("scatter source %s: %w", s.Source, err)
	}
	keys, err := t.ItemKeys(items)
	if err != nil {
		return Result{}, flowstone.Permanent(err)
	}
	if err := scatter.ValidateKeys(keys); err != nil {
		return Result{}, flowstone.Permanentf("scatter %s: %w", t.Asset().Key(), err)
	}
	if dups := scatter.DuplicateKeys(keys); len(dups) > 0 {
		return Result{}, flowstone.Permanentf("scatter %s: duplicate item keys: %s", t.Asset().Key(), strings.Join(dups, ", "))
	}
	if len(items) == 0 {
		return Result{Status: Succeeded, Value: json.RawMessage("[]"), Views: map[string]json.RawMessage{OutcomesView: json.RawMessage("[]")}}, nil
	}
	o := s.orchestrator()
	ref := scatterRef(t)
	reason := fmt.Sprintf("scattering %d items", len(items))
	return Result{Status: Pending, Reason: reason,
		Commit: func(ctx context.Context, tx Tx) (Result, error) {
			if _, found, err := o.Store.Barrier(ctx, tx, ref); err != nil || found {
				return Wait("scatter already started"), err // a retry after the barrier committed
			}
			launches, err := o.Start(ctx, tx, ref, items, keys, time.Now())
			if err != nil {
				return Result{}, err
			}
			for _, l := range launches {
				if err := launch(tx, l); err != nil {
					return Result{}, err
				}
			}
			return Wait(reason), nil
		}}, nil
}

// Resume implements Resumer: it runs one batch's pending items (each with
// the asset's retries) and commits their results in groups; the batch
// that finds the scatter done (or past its threshold, or under
// max_concurrent) takes the next step in its recording transaction.
func (s Scatter) Resume(ctx context.Context, t Task, payload json.RawMessage) (Result, error) {
	var sig scatterSignal
	if err := json.Unmarshal(payload, &sig); err != nil {
		return Result{}, flowstone.Permanentf("scatter signal: %v", err)
	}
	if wait := time.Until(sig.At); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
	o := s.orchestrator()
	ref := scatterRef(t)
	// A first delivery runs the items its job carries; a job delivered
	// again reads its batch, whose done count says which have a result.
	b, carried := scatter.Batch{}, false
	if sig.Items != nil && !t.Redelivered() {
		b, carried = o.Carried(sig.Batch, sig.Items, sig.Keys)
	}
	if !carried {
		from, to := o.Range(sig.Batch)
		var err error
		if b, err = o.Store.PendingItems(ctx, t.DB(), ref, sig.Batch, from, to); err != nil {
			return Result{}, err
		}
	}
	if b.Layout == scatter.OnBarrier {
		return s.resumeCounted(ctx, t, o, ref, b.Items)
	}
	if len(b.Items) > 0 {
		if err := s.runBatch(ctx, t, o, ref, b); err != nil {
			return Result{}, err
		}
	} else if !b.Running {
		return Wait(""), nil // failed or cancelled, and its items with it
	}
	// Every item of the batch has its result committed (by this job, or
	// before it was delivered again). Most batches are done here: their
	// job completes without a transaction of its own.
	settle, err := o.NeedsSettle(ctx, t.DB(), ref)
	if err != nil || !settle {
		return Wait(""), err
	}
	return Result{Status: Pending, Commit: func(ctx context.Context, tx Tx) (Result, error) {
		step, err := o.Settle(ctx, tx, ref, sig.Batch, time.Now())
		if err != nil {
			return Result{}, err
		}
		return stepResult(tx, step)
	}}, nil
}

// resumeCounted runs a batch of a scatter counted on its barrier (started
// before its batch rows counted): the batch's last results are recorded
// and counted in its recording transaction, which takes the next step.
func (s Scatter) resumeCounted(ctx context.Context, t Task, o scatter.Orchestrator, ref scatter.Ref, items []scatter.Item) (Result, error) {
	if len(items) == 0 {
		// Every item of the batch is recorded (this job's result was
		// recorded and it is redelivered), or the scatter failed or was
		// cancelled and its items with it.
		return Wait(""), nil
	}
	results, err := s.runItems(ctx, t, o, ref, items)
	if err != nil {
		return Result{}, err
	}
	return Result{Status: Pending, Commit: func(ctx context.Context, tx Tx) (Result, error) {
		step, err := o.Complete(ctx, tx, ref, results, time.Now())
		if err != nil {
			return Result{}, err
		}
		return stepResult(tx, step)
	}}, nil
}

// stepResult launches a step's batches in tx and returns what it decided.
func stepResult(tx Tx, step scatter.Step) (Result, error) {
	for _, l := range step.Next {
		if err := launch(tx, l); err != nil {
			return Result{}, err
		}
	}
	switch {
	case step.Failed:
		return Result{Status: Failed, Reason: step.Reason}, nil
	case step.Done:
		return Result{Status: Succeeded, Value: step.Values, Views: map[string]json.RawMessage{OutcomesView: step.Outcomes},
			Reason: partial(step)}, nil
	}
	// The node's reason stays what Run recorded: rewriting it would
	// make every batch queue on the node's row. Progress is the
	// barrier's (ScatterProgress).
	return Wait(""), nil
}

// runBatch runs a batch's pending items in order, committing their
// results in groups as the plan's Group says, each in a transaction of
// its own, and the last group at the end: a batch killed midway redoes one
// group at most. A group that finds the scatter failed or cancelled stops
// the batch. For a scatter counted on its batch rows.
func (s Scatter) runBatch(ctx context.Context, t Task, o scatter.Orchestrator, ref scatter.Ref, b scatter.Batch) error {
	results := make([]scatter.ItemResult, 0, min(len(b.Items), 128))
	since := time.Now()
	for i, it := range b.Items {
		results = append(results, s.runItem(ctx, t, it))
		last := i == len(b.Items)-1
		if !last && (!o.Plan.Due(len(results), time.Since(since)) || ctx.Err() != nil) {
			continue
		}
		var stop bool
		group := results
		// The last group is recorded even when the job's context ended
		// (timeout), as its items' results are what they are.
		gctx := ctx
		if last {
			gctx = context.WithoutCancel(ctx)
		}
		commit := func(ctx context.Context, q Querier) (err error) {
			stop, err = o.CommitBatch(ctx, q, ref, b, group, last)
			return err
		}
		// A group without failed items is one statement in the BatchRows
		// layout (its compare-and-set on the batch's done count, safe to
		// run again): it commits on its own, without BEGIN and COMMIT.
		write := t.InTx
		if b.Layout == scatter.BatchRows && !anyFailed(group) {
			write = t.Write
		}
		if err := write(gctx, commit); err != nil {
			return fmt.Errorf("scatter %s: commit items %d to %d: %w", ref.Asset, group[0].Index, group[len(group)-1].Index, err)
		}
		results, since = results[:0], time.Now()
		if stop {
			break
		}
	}
	return nil
}

// anyFailed reports whether a result in group failed: counting it on the
// barrier makes the group two statements, committed together.
func anyFailed(group []scatter.ItemResult) bool {
	for _, r := range group {
		if r.Err != "" {
			return true
		}
	}
	return false
}

func partial(step scatter.Step) string {
	if step.FailedItems == 0 {
		return ""
	}
	return fmt.Sprintf("partial: %d of %d items failed", step.FailedItems, step.Total)
}

// runItems runs a batch's pending items in order and returns the results
// not yet committed, for the batch's Complete. Groups of results are
// committed before, each in a transaction of its own, as the plan's Group
// says, so that a batch killed midway redoes one group at most; the
// batch's last item is always left to Complete, which then knows that this
// batch had not completed before (and claims the next batch once). A group
// that finds the scatter failed or cancelled stops the batch.
func (s Scatter) runItems(ctx context.Context, t Task, o scatter.Orchestrator, ref scatter.Ref, items []scatter.Item) ([]scatter.ItemResult, error) {
	results := make([]scatter.ItemResult, 0, min(len(items), 128))
	since := time.Now()
	for i, it := range items {
		results = append(results, s.runItem(ctx, t, it))
		if i == len(items)-1 || !o.Plan.Due(len(results), time.Since(since)) || ctx.Err() != nil {
			continue
		}
		var stop bool
		group := results
		if err := t.InTx(ctx, func(ctx context.Context, q Querier) (err error) {
			stop, err = o.CommitGroup(ctx, q, ref, group)
			return err
		}); err != nil {
			return nil, fmt.Errorf("scatter %s: commit items %d to %d: %w", ref.Asset, group[0].Index, group[len(group)-1].Index, err)
		}
		results, since = results[:0], time.Now()
		if stop {
			break
		}
	}
	return results, nil
}

// runItem runs one item with the asset's retries; a failed item does not
// fail its batch-mates.
func (s Scatter) runItem(ctx context.Context, t Task, it scatter.Item) scatter.ItemResult {
	r := scatter.ItemResult{Index: it.Index, Key: it.Key, Raw: it.Raw, Started: time.Now()}
	for attempt := 1; ; attempt++ {
		r.Attempts = attempt
		v, err := t.CallItem(ctx, it.Raw)
		if err == nil {
			r.Err = ""
			data, err := json.Marshal(v)
			if err != nil {
				r.Err = fmt.Sprintf("value of type %T does not encode as JSON: %v", v, err)
			} else {
				r.Value = data
			}
			break
		}
		r.Err = err.Error()
		if attempt > t.Retries() || errors.Is(err, flowstone.ErrPermanent) || ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(t.RetryDelay(attempt)):
		case <-ctx.Done():
		}
	}
	if r.Err != "" {
		r.Value = nil
	}
	r.Finished = time.Now()
	return r
}
