package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/scatter"
	"github.com/riverqueue/river"
)

// RunResult is a run's state as recorded in the database.
type RunResult struct {
	ID         string
	Pipeline   string
	Partition  flowstone.Partition
	Status     RunStatus
	CreatedAt  time.Time
	FinishedAt time.Time // zero while running
	// StartedBy says what started the run: StartedByUser,
	// StartedBySchedule, StartedBySensor, StartedByBackfill or
	// StartedByAutomation.
	StartedBy string
	// Assets by key. An asset the run materializes at several partitions
	// (hourly inputs of a daily rollup) is represented by its row at the
	// run's partition, else by its least successful row; ByPartition has
	// them all.
	Assets map[string]AssetResult
	// ByPartition holds every asset's row per partition key.
	ByPartition map[string]map[flowstone.Partition]AssetResult
	// Order lists the asset keys in the order they were recorded
	// (topological).
	Order []string
}

// AssetResult is one asset's state within a run.
type AssetResult struct {
	Status    AssetStatus
	Partition flowstone.Partition
	// Error is the last error's message, empty when none.
	Error           string
	Attempts        int
	Materialization string
	StartedAt       time.Time
	FinishedAt      time.Time
}

// Counts tallies the run's assets by status.
func (r RunResult) Counts() map[AssetStatus]int {
	c := map[AssetStatus]int{}
	for _, a := range r.Assets {
		c[a.Status]++
	}
	return c
}

// micros converts a stored time in microseconds; 0 is the zero time.
func micros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v)
}

// Run returns run id's current state.
func (e *Engine) Run(ctx context.Context, id string) (RunResult, error) {
	q := e.be.pool()
	r := RunResult{ID: id, Assets: map[string]AssetResult{}, ByPartition: map[string]map[flowstone.Partition]AssetResult{}}
	if err := validRunID(id); err != nil {
		return r, err
	}
	row, found, err := e.st.Run(ctx, q, id)
	if err != nil {
		return r, err
	}
	if !found {
		return r, fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	r.Pipeline, r.Partition, r.Status = row.Pipeline, flowstone.Partition(row.Partition), RunStatus(row.Status)
	r.CreatedAt, r.FinishedAt = time.UnixMicro(row.CreatedAt), micros(row.FinishedAt)
	r.StartedBy = startedBy(row.RunKey)
	rows, err := e.st.RunAssets(ctx, q, id)
	if err != nil {
		return r, err
	}
	for _, ra := range rows {
		key := ra.Asset
		a := AssetResult{Status: AssetStatus(ra.Status), Partition: flowstone.Partition(ra.Partition), Error: ra.Error, Attempts: ra.Attempts,
			Materialization: ra.Materialization, StartedAt: micros(ra.StartedAt), FinishedAt: micros(ra.FinishedAt)}
		if r.ByPartition[key] == nil {
			r.ByPartition[key] = map[flowstone.Partition]AssetResult{}
			r.Order = append(r.Order, key)
		}
		r.ByPartition[key][a.Partition] = a
		if prev, seen := r.Assets[key]; !seen || a.Partition == r.Partition || prev.Partition != r.Partition && rank(a.Status) > rank(prev.Status) {
			r.Assets[key] = a
		}
	}
	if b, ok := e.bindings[r.Pipeline]; ok {
		r.Order = r.Order[:0]
		for _, a := range b.pipeline.assets {
			if _, in := r.Assets[a.Key]; in {
				r.Order = append(r.Order, a.Key)
			}
		}
	}
	return r, nil
}

// Wait blocks until run id finishes (or ctx ends) and returns its result.
// Its error reports a failure to wait, not a failed run: see
// RunResult.Status. It watches the database, so it sees work done by any
// process, and rides out the database's outages (RetryUnreachable).
func (e *Engine) Wait(ctx context.Context, id string) (RunResult, error) {
	if err := validRunID(id); err != nil {
		return RunResult{ID: id}, err
	}
	events, stop := e.Subscribe(64)
	defer stop()
	delay := 10 * time.Millisecond
	for {
		var status store.RunStatus
		var found bool
		err := e.out.ride(ctx, func(ctx context.Context) (err error) {
			status, found, err = e.st.RunStatus(ctx, e.be.pool(), id)
			return err
		})
		if err != nil {
			return RunResult{ID: id}, fmt.Errorf("wait for %s: %w", id, err)
		}
		if !found {
			return RunResult{ID: id}, fmt.Errorf("%w: %s", ErrRunNotFound, id)
		}
		if RunStatus(status).Terminal() {
			var res RunResult
			err := e.out.ride(ctx, func(ctx context.Context) (err error) {
				res, err = e.Run(ctx, id)
				return err
			})
			return res, err
		}
		timer := time.NewTimer(delay)
	wait:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return RunResult{ID: id}, ctx.Err()
			case ev, ok := <-events:
				if ok && (ev.RunID != id || ev.Kind != EventRunFinished) {
					continue
				}
				timer.Stop()
				break wait
			case <-timer.C:
				break wait
			}
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// Cancel cancels run id: its assets not yet finished are recorded
// cancelled, queued jobs do nothing when they run, and running jobs are
// asked to stop (their results are discarded). Cancelling a finished run
// is a no-op.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	if err := validRunID(id); err != nil {
		return err
	}
	if err := e.writable(); err != nil {
		return err
	}
	var jobIDs []int64
	var found bool
	err := e.be.inTx(ctx, func(tx txn) error {
		jobIDs, found = nil, false
		status, ok, err := e.st.RunStatus(ctx, tx, id)
		if err != nil || !ok {
			return err
		}
		found = true
		if RunStatus(status).Terminal() {
			return nil
		}
		pipeline, backfill, err := e.st.CancelRun(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, c := range e.cancellers {
			if err := c.CancelRun(ctx, tx, id); err != nil {
				return err
			}
		}
		if backfill != "" {
			if err := tx.insertJobs(ctx, []river.InsertManyParams{backfillJob(pipeline, backfill)}); err != nil {
				return err
			}
		}
		jobIDs, err = e.st.CancelRunAssets(ctx, tx, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("cancel %s: %w", id, err)
	}
	if !found {
		return fmt.Errorf("%w: %s", ErrRunNotFound, id)
	}
	for _, jid := range jobIDs {
		if err := e.be.cancelJob(ctx, jid); err != nil {
			e.log.DebugContext(ctx, "cancel job", "job", jid, "error", err)
		}
	}
	e.events.publish(Event{Kind: EventRunFinished, RunID: id, Status: string(RunCancelled)})
	return nil
}

// RunSummary is one line of a run listing.
type RunSummary struct {
	ID         string
	Pipeline   string
	Partition  flowstone.Partition
	Status     RunStatus
	Pending    int
	Failed     int
	CreatedAt  time.Time
	FinishedAt time.Time
	// StartedBy says what started the run (see RunResult.StartedBy).
	StartedBy string
}

// Runs lists the newest runs of pipeline (all pipelines when empty).
func (e *Engine) Runs(ctx context.Context, pipeline string, limit int) ([]RunSummary, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := e.st.Runs(ctx, e.be.pool(), pipeline, limit)
	if err != nil {
		return nil, err
	}
	out := make([]RunSummary, len(rows))
	for i, r := range rows {
		out[i] = RunSummary{ID: r.ID, Pipeline: r.Pipeline, Partition: flowstone.Partition(r.Partition), Status: RunStatus(r.Status),
			Pending: r.Open, Failed: r.Failed, CreatedAt: time.UnixMicro(r.CreatedAt), FinishedAt: micros(r.FinishedAt),
			StartedBy: startedBy(r.RunKey)}
	}
	return out, nil
}

// Materialization is one recorded materialization.
type Materialization struct {
	ID          string
	Pipeline    string
	Asset       string
	Partition   flowstone.Partition
	RunID       string
	Status      string
	CodeVersion string
	Attempts    int
	Error       string
	Metadata    map[string]any
	StartedAt   time.Time
	FinishedAt  time.Time
	// Upstream lists the materializations it read.
	Upstream []LineageEdge
}

// LineageEdge is one upstream materialization read.
type LineageEdge struct {
	Asset           string
	Partition       flowstone.Partition
	Materialization string
}

// Materializations lists the newest materializations of an asset (all
// partitions), newest first, with their lineage.
func (e *Engine) Materializations(ctx context.Context, pipeline, asset string, limit int) ([]Materialization, error) {
	if limit <= 0 {
		limit = 20
	}
	rows, err := e.st.Materializations(ctx, e.be.pool(), pipeline, asset, limit)
	if err != nil {
		return nil, err
	}
	return e.withLineage(ctx, rows)
}

// Latest returns, for each asset of pipeline, its newest materialization of
// any status (the assets listing).
func (e *Engine) Latest(ctx context.Context, pipeline string) (map[string]Materialization, error) {
	rows, err := e.st.Latest(ctx, e.be.pool(), pipeline)
	if err != nil {
		return nil, err
	}
	ms, err := e.withLineage(ctx, rows)
	if err != nil {
		return nil, err
	}
	out := map[string]Materialization{}
	for _, m := range ms {
		out[m.Asset] = m
	}
	return out, nil
}

// MaterializationByID returns one materialization with its lineage.
func (e *Engine) MaterializationByID(ctx context.Context, id string) (Materialization, error) {
	row, found, err := e.st.Materialization(ctx, e.be.pool(), id)
	if err != nil {
		return Materialization{}, err
	}
	if !found {
		return Materialization{}, fmt.Errorf("%w: materialization %s", ErrNotMaterialized, id)
	}
	ms, err := e.withLineage(ctx, []store.Materialization{row})
	if err != nil {
		return Materialization{}, err
	}
	return ms[0], nil
}

// withLineage converts stored materializations, reading what each read
// (one query per 500 of them).
func (e *Engine) withLineage(ctx context.Context, rows []store.Materialization) ([]Materialization, error) {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	read, err := e.st.LineageOf(ctx, e.be.pool(), ids)
	if err != nil {
		return nil, err
	}
	out := make([]Materialization, len(rows))
	for i, r := range rows {
		out[i] = materialization(r)
		for _, l := range read[r.ID] {
			out[i].Upstream = append(out[i].Upstream, LineageEdge{Asset: l.Asset, Partition: flowstone.Partition(l.Partition), Materialization: l.Materialization})
		}
	}
	return out, nil
}

// materialization converts a stored materialization, without its lineage.
func materialization(r store.Materialization) Materialization {
	m := Materialization{ID: r.ID, Pipeline: r.Pipeline, Asset: r.Asset, Partition: flowstone.Partition(r.Partition), RunID: r.Run,
		Status: string(r.Status), CodeVersion: r.CodeVersion, Attempts: r.Attempts, Error: r.Error,
		StartedAt: time.UnixMicro(r.StartedAt), FinishedAt: time.UnixMicro(r.FinishedAt)}
	_ = json.Unmarshal([]byte(r.Metadata), &m.Metadata)
	return m
}

// PartitionStatus is what is known of one partition of an asset.
type PartitionStatus struct {
	Partition flowstone.Partition
	// Latest is the partition's newest materialization of any status,
	// without its lineage; its ID is empty when the partition has none.
	Latest Materialization
	// RunningIn is a run working on the partition now (pending, queued,
	// running or waiting in it), empty when none.
	RunningIn string
}

// PartitionStatuses returns one entry per partition of asset that has a
// materialization or is being worked on, ordered by partition key. The
// database picks each partition's newest materialization with one index
// probe per partition, so the cost follows the number of partitions, not
// the length of their history.
func (e *Engine) PartitionStatuses(ctx context.Context, pipeline, asset string) ([]PartitionStatus, error) {
	rows, err := e.st.NewestByPartition(ctx, e.be.pool(), pipeline, asset)
	if err != nil {
		return nil, err
	}
	working, err := e.st.Working(ctx, e.be.pool(), pipeline, asset)
	if err != nil {
		return nil, err
	}
	out := make([]PartitionStatus, 0, len(rows)+len(working))
	index := make(map[flowstone.Partition]int, len(rows))
	for _, r := range rows {
		index[flowstone.Partition(r.Partition)] = len(out)
		out = append(out, PartitionStatus{Partition: flowstone.Partition(r.Partition), Latest: materialization(r)})
	}
	for _, w := range working {
		k := flowstone.Partition(w.Partition)
		i, ok := index[k]
		if !ok {
			i, index[k] = len(out), len(out)
			out = append(out, PartitionStatus{Partition: k})
		}
		out[i].RunningIn = w.Run
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int { return strings.Compare(string(a.Partition), string(b.Partition)) })
	return out, nil
}

// PartitionHealth counts the partitions of each of pipeline's assets named
// by the status of their newest materialization, or "running" while a run
// works on one, as PartitionStatuses lists them; an asset with none is
// absent. Two statements answer every asset (one per 100 assets, and one
// for the unfinished nodes), each partition's newest materialization one
// index probe, so the cost follows the number of partitions, not the
// length of their history.
func (e *Engine) PartitionHealth(ctx context.Context, pipeline string, assets []string) (map[string]map[string]int, error) {
	out := map[string]map[string]int{}
	if len(assets) == 0 {
		return out, nil
	}
	rows, err := e.st.NewestStatuses(ctx, e.be.pool(), pipeline, assets)
	if err != nil {
		return nil, err
	}
	working, err := e.st.WorkingOf(ctx, e.be.pool(), pipeline)
	if err != nil {
		return nil, err
	}
	type key struct{ asset, partition string }
	status := make(map[key]string, len(rows)+len(working))
	for _, r := range rows {
		status[key{r.Asset, r.Partition}] = string(r.Status)
	}
	named := make(map[string]bool, len(assets))
	for _, a := range assets {
		named[a] = true
	}
	for _, w := range working {
		if named[w.Asset] {
			status[key{w.Asset, w.Partition}] = string(StatusRunning)
		}
	}
	for k, s := range status {
		if out[k.asset] == nil {
			out[k.asset] = map[string]int{}
		}
		out[k.asset][s]++
	}
	return out, nil
}

// ScatterProgress reports the progress of the scatter asset ref: items
// done and failed of the total. A ref outside its run is refused with
// ErrNotInRun; a node that has not scattered (yet) with ErrNotMaterialized.
func (e *Engine) ScatterProgress(ctx context.Context, ref Ref) (scatter.Progress, error) {
	if _, err := e.resolveRef(ctx, e.be.pool(), ref); err != nil {
		return scatter.Progress{}, err
	}
	p, found, err := scatter.ProgressOf(ctx, e.be.pool(), scatter.Ref{Run: ref.RunID, Asset: ref.Asset, Partition: string(ref.Partition)})
	if err == nil && !found {
		err = fmt.Errorf("%w: %s has not scattered (yet)", ErrNotMaterialized, ref)
	}
	return p, err
}

// rank orders statuses from most to least successful, to pick the row that
// represents an asset with several partitions in a run.
func rank(s AssetStatus) int {
	switch s {
	case StatusSucceeded, StatusReused:
		return 0
	case StatusSkipped:
		return 1
	case StatusPending, StatusQueued, StatusRunning, StatusWaiting:
		return 2
	}
	return 3
}
