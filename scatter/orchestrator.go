package scatter

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Plan is how a scatter runs: its asset's scatter options.
type Plan struct {
	// Batch is how many items one job runs (at least 1).
	Batch int
	// MaxConcurrent bounds the items in flight across all processes;
	// zero means no bound.
	MaxConcurrent int
	// PerSecond spaces batches so items start at this rate; zero means
	// as fast as workers take them.
	PerSecond float64
	// FailureThreshold fails the barrier once failed/total exceeds it.
	FailureThreshold float64
	// Group bounds the item results a batch holds uncommitted: a killed
	// batch redoes one group at most. The zero value is DefaultGroup.
	Group Group
}

// Group is when a batch commits the item results it holds, before the
// batch ends: after Items results once MinWait has passed since the last
// commit, and at the latest MaxWait after it whatever the count. MinWait
// keeps a batch of fast items to one commit (a batch of 100 no-op items runs in
// well under a millisecond, a commit costs one to several): items cheap to
// run again are not worth a transaction each. Items and MaxWait bound the
// work a kill loses when items are slow.
type Group struct {
	Items            int
	MinWait, MaxWait time.Duration
}

// DefaultGroup is the group a zero Plan.Group means: every 10 items but
// not more often than every 50ms, and at least every 500ms.
var DefaultGroup = Group{Items: 10, MinWait: 50 * time.Millisecond, MaxWait: 500 * time.Millisecond}

func (p Plan) group() Group {
	g := p.Group
	if g == (Group{}) {
		return DefaultGroup
	}
	if g.Items <= 0 {
		g.Items = DefaultGroup.Items
	}
	if g.MaxWait <= 0 {
		g.MaxWait = DefaultGroup.MaxWait
	}
	return g
}

// Due reports whether a batch holding n uncommitted item results, run
// since the last commit, commits them now as a group.
func (p Plan) Due(n int, since time.Duration) bool {
	g := p.group()
	return n > 0 && (since >= g.MaxWait || n >= g.Items && since >= g.MinWait)
}

func (p Plan) batch() int { return max(p.Batch, 1) }

// window is how many batches may be in flight at once.
func (p Plan) window(batches int) int {
	if p.MaxConcurrent <= 0 {
		return batches
	}
	return max(1, p.MaxConcurrent/p.batch())
}

// spacing is the time between two batches' launches.
func (p Plan) spacing() time.Duration {
	if p.PerSecond <= 0 {
		return 0
	}
	return time.Duration(float64(p.batch()) / p.PerSecond * float64(time.Second))
}

// Launch is a batch to enqueue, and when.
type Launch struct {
	Batch int
	At    time.Time
	// Items and Keys are the batch's items and their keys (nil when
	// positional), for its job to carry, so that its first delivery need
	// not read them (see Carried); nil when the batch is launched without
	// them (a successor under max_concurrent, or items over CarryLimit).
	Items []json.RawMessage
	Keys  []string
}

// CarryLimit is the most bytes of item JSON a batch's job carries (see
// Launch.Items): larger batches are read from their row.
const CarryLimit = 16 << 10

// Carried is the Batch that PendingItems would read of batch n on the
// first delivery of its job, from the items (and keys) the job carries:
// nothing of it is recorded yet, and the scatter is running (the engine's
// read of its node, waiting in a run not cancelled, tells: a barrier stops
// running only with its node's end or its run's cancellation). Not for a
// job delivered again (Task.Redelivered): that reads its batch, whose done
// count says which items have a result. ok is false when keys do not
// match the items.
func (o Orchestrator) Carried(n int, items []json.RawMessage, keys []string) (b Batch, ok bool) {
	if len(items) == 0 || keys != nil && len(keys) != len(items) {
		return Batch{}, false
	}
	from, _ := o.Range(n)
	b = Batch{N: n, From: from, Size: len(items), Running: true, Layout: BatchRows, Items: make([]Item, len(items))}
	for i, raw := range items {
		key := strconv.Itoa(from + i)
		if keys != nil {
			key = keys[i]
		}
		b.Items[i] = Item{Index: from + i, Key: key, Raw: raw, Status: ItemPending}
	}
	return b, true
}

// Step is what finishing a batch decided.
type Step struct {
	// Next are the batches to launch now (within the concurrency window).
	Next []Launch
	// Done: every item ran and the barrier completed; Values and Outcomes
	// are the gathered results.
	Done             bool
	Values, Outcomes json.RawMessage
	// Failed: the failure threshold was crossed; Reason says how.
	Failed bool
	Reason string
	// Progress after this step.
	Total, Finished, FailedItems int
}

// Orchestrator launches a scatter's batches and completes its barrier,
// keeping every decision in the database so any process can take the next
// step.
type Orchestrator struct {
	Store Store
	Plan  Plan
}

// DuplicateKeys returns the keys that appear more than once, sorted.
func DuplicateKeys(keys []string) []string {
	seen := map[string]int{}
	for _, k := range keys {
		seen[k]++
	}
	var dups []string
	for k, n := range seen {
		if n > 1 {
			dups = append(dups, k)
		}
	}
	sort.Strings(dups)
	return dups
}

// ValidateKeys checks item keys (from the item type's ScatterKey) with
// flowstone.ValidateKey: the first invalid one is the error, naming the
// item's index and matching flowstone.ErrInvalidKey. Positional keys (nil
// keys) are always valid.
func ValidateKeys(keys []string) error {
	for i, k := range keys {
		if err := flowstone.ValidateKey("scatter item key", k); err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	return nil
}

// Start stores the barrier and items of ref and returns the batches to
// launch first: all of them, spaced by the rate, or as many as the
// concurrency window allows.
func (o Orchestrator) Start(ctx context.Context, db DB, ref Ref, items []json.RawMessage, keys []string, now time.Time) ([]Launch, error) {
	if err := ValidateKeys(keys); err != nil {
		return nil, err
	}
	if dups := DuplicateKeys(keys); len(dups) > 0 {
		return nil, fmt.Errorf("duplicate item keys: %s", strings.Join(dups, ", "))
	}
	batch := o.Plan.batch()
	batches := (len(items) + batch - 1) / batch
	first := min(o.Plan.window(batches), batches)
	spacing := o.Plan.spacing()
	launches := make([]Launch, first)
	for i := range launches {
		launches[i] = Launch{Batch: i, At: now.Add(time.Duration(i) * spacing)}
		from, to := o.Range(i)
		to = min(to, len(items))
		size := 0
		for _, it := range items[from:to] {
			size += len(it)
		}
		if size <= CarryLimit {
			launches[i].Items = items[from:to]
			if keys != nil {
				launches[i].Keys = keys[from:to]
			}
		}
	}
	b := Barrier{Ref: ref, Total: len(items), Batch: batch, Batches: batches, NextBatch: first,
		NextAt: now.Add(time.Duration(first) * spacing)}
	if err := o.Store.Create(ctx, db, b, items, keys); err != nil {
		return nil, err
	}
	return launches, nil
}

// Range returns the item indexes [from, to) of batch n (to may pass the
// last item for the last batch).
func (o Orchestrator) Range(n int) (from, to int) {
	return n * o.Plan.batch(), (n + 1) * o.Plan.batch()
}

// Complete serves a scatter counted on its barrier (started before
// scatter migration 003; see CommitBatch for the others). It records a
// batch's last results (those not committed in groups
// before) and decides the next step, atomically in db (the transaction
// recording the job): count, then fail the barrier past the threshold,
// complete it after the last item, or launch the next batch of the window.
// Only Complete completes a barrier: the batch whose group counted the last
// item completes it here, after that group. A batch claims the next one
// only when it records results here: its last item is always recorded
// here, so a batch rerun after its job was recorded claims nothing twice.
func (o Orchestrator) Complete(ctx context.Context, db DB, ref Ref, results []ItemResult, now time.Time) (Step, error) {
	stored, failed, err := o.Store.Record(ctx, db, ref, results)
	if err != nil {
		return Step{}, err
	}
	b, err := o.Store.Count(ctx, db, ref, stored, failed)
	if err != nil {
		return Step{}, err
	}
	step := Step{Total: b.Total, Finished: b.Done, FailedItems: b.Failed}
	if b.Status != Running {
		return step, nil // failed or cancelled already: nothing more
	}
	if o.pastThreshold(b.Total, b.Failed) {
		step.Failed = true
		step.Reason = o.failure(ctx, db, ref, OnBarrier, b.Total, b.Failed)
		return step, o.Store.Finish(ctx, db, ref, Failed, step.Reason)
	}
	if b.Done >= b.Total {
		step.Done = true
		if step.Values, step.Outcomes, err = o.Store.Gather(ctx, db, ref, OnBarrier, b.Total); err != nil {
			return step, err
		}
		return step, o.Store.Finish(ctx, db, ref, Completed, "")
	}
	if o.Plan.MaxConcurrent > 0 && len(results) > 0 {
		n, at, ok, err := o.Store.ClaimBatch(ctx, db, ref, now, o.Plan.spacing())
		if err != nil {
			return step, err
		}
		if ok {
			step.Next = append(step.Next, Launch{Batch: n, At: at})
		}
	}
	return step, nil
}

// CommitGroup records a group of a batch's item results and counts them
// on the barrier, for a scatter counted there (see Complete), in db, a
// transaction of its own committed before the batch goes on. It
// reports whether the batch should stop running items: the barrier is no
// longer running (failed, cancelled) or this group took it past the
// failure threshold, which the batch's Complete then records. It never
// completes the barrier: the batch's own Complete, which follows every
// group it committed, does.
func (o Orchestrator) CommitGroup(ctx context.Context, db DB, ref Ref, results []ItemResult) (stop bool, err error) {
	stored, failed, err := o.Store.Record(ctx, db, ref, results)
	if err != nil {
		return false, err
	}
	b, err := o.Store.Count(ctx, db, ref, stored, failed) // the barrier's lock last
	if err != nil {
		return false, err
	}
	return b.Status != Running || o.pastThreshold(b.Total, b.Failed), nil
}

// CommitBatch records a group of batch b's item results (in item order,
// following those recorded before) and counts them on the batch's row,
// in db: a transaction of its own, or the database itself when no result
// failed (then the group is one statement, safe to run again); for a scatter counted on its batch
// rows (b.Layout ItemRows or BatchRows), whose every group, its last
// included, commits this way. Concurrent batches share no row (the
// barrier's only for failed items), so they commit side by side. Unless
// last, it reports whether the batch should stop running items: the
// barrier is no longer running or is past the failure threshold (Settle
// fails it). Whether the barrier is done is for
// NeedsSettle to tell once this commits.
func (o Orchestrator) CommitBatch(ctx context.Context, db DB, ref Ref, b Batch, results []ItemResult, last bool) (stop bool, err error) {
	if _, _, err := o.Store.RecordBatch(ctx, db, ref, b, results); err != nil || last {
		return false, err
	}
	st, err := o.Store.State(ctx, db, ref)
	return st.Status != Running || o.pastThreshold(st.Total, st.Failed), err
}

// NeedsSettle reports, after a batch of a scatter counted on its batch
// rows committed its results, whether it has a step to take in its
// recording transaction (Settle): the barrier is running and past the
// failure threshold, or no batch is left unfinished, or a successor may
// be due under max_concurrent. Read after the batch's commit, it sees
// every batch committed before: of the batches that finish last at the
// same time, the last to commit finds none left open.
func (o Orchestrator) NeedsSettle(ctx context.Context, db DB, ref Ref) (bool, error) {
	if o.Plan.MaxConcurrent > 0 {
		return true, nil
	}
	st, err := o.Store.State(ctx, db, ref)
	return st.Status == Running && (o.pastThreshold(st.Total, st.Failed) || !st.Open), err
}

// Settle takes batch n's step in the transaction recording its job, for
// a scatter counted on its batch rows: fail the barrier past the
// threshold, or complete it and gather when no batch is left unfinished
// (each by a compare-and-set on its status: exactly one batch does), or
// launch a successor of n under max_concurrent (once per batch). A batch
// delivered again after its results committed settles again; nothing
// happens twice.
func (o Orchestrator) Settle(ctx context.Context, db DB, ref Ref, n int, now time.Time) (Step, error) {
	st, err := o.Store.State(ctx, db, ref)
	if err != nil {
		return Step{}, err
	}
	step := Step{Total: st.Total, FailedItems: st.Failed}
	if st.Status != Running {
		return step, nil
	}
	switch {
	case o.pastThreshold(st.Total, st.Failed):
		reason := o.failure(ctx, db, ref, st.Layout, st.Total, st.Failed)
		won, err := o.Store.Settle(ctx, db, ref, Failed, reason)
		if won {
			step.Failed, step.Reason = true, reason
		}
		return step, err
	case !st.Open:
		won, err := o.Store.Settle(ctx, db, ref, Completed, "")
		if err != nil || !won {
			return step, err
		}
		step.Done, step.Finished = true, st.Total
		step.Values, step.Outcomes, err = o.Store.Gather(ctx, db, ref, st.Layout, st.Total)
		return step, err
	case o.Plan.MaxConcurrent > 0:
		mine, err := o.Store.ClaimSuccessor(ctx, db, ref, n)
		if err != nil || !mine {
			return step, err
		}
		next, at, ok, err := o.Store.ClaimBatch(ctx, db, ref, now, o.Plan.spacing())
		if ok {
			step.Next = append(step.Next, Launch{Batch: next, At: at})
		}
		return step, err
	}
	return step, nil
}

func (o Orchestrator) pastThreshold(total, failed int) bool {
	return total > 0 && float64(failed)/float64(total) > o.Plan.FailureThreshold+1e-12
}

// failure says why the barrier failed: how many items, and the first.
func (o Orchestrator) failure(ctx context.Context, db DB, ref Ref, layout Layout, total, failed int) string {
	reason := fmt.Sprintf("%d of %d items failed, more than the failure threshold %s", failed, total, formatFraction(o.Plan.FailureThreshold))
	if idx, msg, ok, err := o.Store.FirstError(ctx, db, ref, layout); err == nil && ok {
		reason += fmt.Sprintf("; first: item %d: %s", idx, msg)
	}
	return reason
}

func formatFraction(f float64) string {
	if f == math.Trunc(f) {
		return fmt.Sprintf("%.0f", f)
	}
	return fmt.Sprintf("%g", f)
}
