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
}

// scatterSignal is the payload of a batch's job.
type scatterSignal struct {
	Batch int `json:"batch"`
	// At is when the batch may start (rate=). River releases scheduled
	// jobs only every few seconds, so the job is scheduled up to
	// schedulerSlack early and waits for At itself.
	At time.Time `json:"at,omitzero"`
}

// schedulerSlack covers River's scheduler interval (5s).
const schedulerSlack = 5 * time.Second

func launch(tx Tx, l scatter.Launch) error {
	return tx.Resume(l.At.Add(-schedulerSlack), scatterSignal{Batch: l.Batch, At: l.At})
}

func (s Scatter) orchestrator() scatter.Orchestrator {
	return scatter.Orchestrator{Plan: scatter.Plan{Batch: s.Batch, MaxConcurrent: s.MaxConcurrent,
		PerSecond: s.PerSecond, FailureThreshold: s.FailureThreshold}}
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
	if dups := scatter.DuplicateKeys(keys); len(dups) > 0 {
		return Result{}, flowstone.Permanentf("scatter %s: duplicate item keys: %s", t.Asset().Key(), strings.Join(dups, ", "))
	}
	if len(items) == 0 {
		return Result{Status: Succeeded, Value: json.RawMessage("[]"), Views: map[string]json.RawMessage{OutcomesView: json.RawMessage("[]")}}, nil
	}
	o := s.orchestrator()
	ref := scatterRef(t)
	return Result{Status: Pending, Reason: fmt.Sprintf("0 of %d items done", len(items)),
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
			return Wait(fmt.Sprintf("0 of %d items done", len(items))), nil
		}}, nil
}

// Resume implements Resumer: it runs one batch's pending items (each with
// the asset's retries), then records them and takes the next step in the
// recording transaction.
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
	b, found, err := o.Store.Barrier(ctx, t.DB(), ref)
	if err != nil {
		return Result{}, err
	}
	if !found || b.Status != scatter.Running {
		return Wait("scatter finished"), nil
	}
	from, to := o.Range(b, sig.Batch)
	items, err := o.Store.PendingItems(ctx, t.DB(), ref, from, to)
	if err != nil {
		return Result{}, err
	}
	results := make([]scatter.ItemResult, 0, len(items))
	for _, it := range items {
		results = append(results, s.runItem(ctx, t, it))
	}
	return Result{Status: Pending, Commit: func(ctx context.Context, tx Tx) (Result, error) {
		step, err := o.Complete(ctx, tx, ref, results, time.Now())
		if err != nil {
			return Result{}, err
		}
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
		return Wait(fmt.Sprintf("%d of %d items done, %d failed", step.Finished, step.Total, step.FailedItems)), nil
	}}, nil
}

func partial(step scatter.Step) string {
	if step.FailedItems == 0 {
		return ""
	}
	return fmt.Sprintf("partial: %d of %d items failed", step.FailedItems, step.Total)
}

// runItem runs one item with the asset's retries; a failed item does not
// fail its batch-mates.
func (s Scatter) runItem(ctx context.Context, t Task, it scatter.Item) scatter.ItemResult {
	r := scatter.ItemResult{Index: it.Index, Started: time.Now()}
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
