package runtime

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
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
	keys, err := backfillKeys(p, assets, req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadBackfill, err)
	}
	for _, k := range keys {
		if _, err := e.plan(ctx, p, assets, req.Targets, k); err != nil {
			return "", err
		}
	}
	var cfgJSON any
	if req.Config != nil {
		if p.config == nil {
			return "", fmt.Errorf("%w: pipeline %s takes no config, got %T", ErrBadConfig, p.name, req.Config)
		}
		data, err := p.config.Encode(req.Config)
		if err != nil {
			return "", err
		}
		cfgJSON = string(data)
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
	err = e.be.inTx(ctx, func(tx txn) error {
		if _, err := tx.Exec(ctx, `INSERT INTO flowstone_backfills (id, pipeline, targets, config, force, max_concurrent, status, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, p.name, string(targetsJSON), cfgJSON, boolInt(req.Force), conc, "running", now()); err != nil {
			return err
		}
		for i, k := range keys {
			if _, err := tx.Exec(ctx, `INSERT INTO flowstone_backfill_partitions (backfill_id, idx, partition_key, status) VALUES (?, ?, ?, ?)`,
				id, i, string(k), "pending"); err != nil {
				return err
			}
		}
		return tx.insertJobs(ctx, []river.InsertManyParams{backfillJob(p.name, id)})
	})
	if err != nil {
		return "", fmt.Errorf("backfill %s: %w", p.name, err)
	}
	e.log.InfoContext(ctx, "backfill started", "backfill", id, "pipeline", p.name, "partitions", len(keys))
	return id, nil
}

// backfillKeys lists the request's partitions.
func backfillKeys(p *Pipeline, assets []*AssetDef, req BackfillRequest) ([]flowstone.Partition, error) {
	if len(req.Partitions) > 0 {
		seen := map[flowstone.Partition]bool{}
		for _, k := range req.Partitions {
			if seen[k] {
				return nil, fmt.Errorf("partition %q listed twice", k)
			}
			seen[k] = true
		}
		return req.Partitions, nil
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
		return nil, errors.New("the targets are unpartitioned")
	}
	if req.From == "" || req.To == "" {
		return nil, fmt.Errorf("give Partitions, or From and To (e.g. %q)", set.Example())
	}
	for _, k := range []flowstone.Partition{req.From, req.To} {
		if err := set.Validate(k); err != nil {
			return nil, fmt.Errorf("%w", err)
		}
	}
	var keys []flowstone.Partition
	switch s := set.(type) {
	case flowstone.TimeWindowSet:
		from, _, _ := s.Window(req.From)
		to, _, _ := s.Window(req.To)
		if to.Before(from) {
			return nil, fmt.Errorf("%q is before %q", req.To, req.From)
		}
		for k, ok := req.From, true; ok; k, ok = s.Next(k) {
			keys = append(keys, k)
			if k == req.To {
				return keys, nil
			}
		}
		return nil, fmt.Errorf("%q is past the set's end", req.To)
	case interface{ Keys() []flowstone.Partition }:
		in := false
		for _, k := range s.Keys() {
			in = in || k == req.From
			if in {
				keys = append(keys, k)
			}
			if in && k == req.To {
				return keys, nil
			}
		}
		return nil, fmt.Errorf("%q does not come after %q in the set", req.To, req.From)
	}
	return nil, fmt.Errorf("a %s set has no ranges; list the partitions", set.Kind())
}

// advanceBackfill brings a backfill's partitions up to date with their
// runs and launches pending ones up to its concurrency; the last to finish
// finishes it. Launches use run keys, so a repeated advance starts nothing
// twice.
func (e *Engine) advanceBackfill(ctx context.Context, p *Pipeline, id string) error {
	q := e.be.pool()
	var status, targetsJSON string
	var cfg sql.NullString
	var force, conc int
	err := q.QueryRow(ctx, `SELECT status, targets, config, force, max_concurrent FROM flowstone_backfills WHERE id = ?`, id).
		Scan(&status, &targetsJSON, &cfg, &force, &conc)
	if errors.Is(err, sql.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("%w: %s", ErrBackfillNotFound, id))
	}
	if err != nil {
		return err
	}
	if status != "running" {
		return refreshBackfill(ctx, q, id)
	}
	var targets []string
	_ = json.Unmarshal([]byte(targetsJSON), &targets)
	var config any
	if cfg.Valid && p.config != nil {
		if config, err = p.config.Decode([]byte(cfg.String)); err != nil {
			return river.JobCancel(err)
		}
	}
	for {
		// Claim the next pending partition under the backfill row's lock,
		// so concurrent advances never exceed MaxConcurrent.
		var idx, running int
		var key string
		claimed := false
		err := e.be.inTx(ctx, func(tx txn) error {
			claimed = false
			if _, err := tx.Exec(ctx, `UPDATE flowstone_backfills SET max_concurrent = max_concurrent WHERE id = ?`, id); err != nil {
				return err
			}
			if err := refreshBackfill(ctx, tx, id); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM flowstone_backfill_partitions WHERE backfill_id = ? AND status IN ('running', 'launching')`, id).Scan(&running); err != nil {
				return err
			}
			if running >= conc {
				return nil
			}
			err := tx.QueryRow(ctx, `SELECT idx, partition_key FROM flowstone_backfill_partitions
				WHERE backfill_id = ? AND status = 'pending' ORDER BY idx LIMIT 1`, id).Scan(&idx, &key)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			claimed = true
			_, err = tx.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = 'launching' WHERE backfill_id = ? AND idx = ?`, id, idx)
			return err
		})
		if err != nil {
			return err
		}
		if !claimed {
			if running >= conc {
				return nil
			}
			return e.finishBackfill(ctx, id, running)
		}
		run, err := e.materialize(ctx, p, Request{Targets: targets, Partition: flowstone.Partition(key), Config: config,
			Force: force == 1, RunKey: "backfill:" + id + ":" + key}, id)
		if err != nil {
			if !refused(err) { // this process is closing, or the database failed: later
				_, _ = q.Exec(context.WithoutCancel(ctx), `UPDATE flowstone_backfill_partitions SET status = 'pending' WHERE backfill_id = ? AND idx = ?`, id, idx)
				return err
			}
			_, _ = q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = 'failed' WHERE backfill_id = ? AND idx = ?`, id, idx)
			e.log.ErrorContext(ctx, "backfill partition refused", "backfill", id, "partition", key, "error", err)
			continue
		}
		// A run that finished within Materialize (all reused) is recorded
		// finished by the next advance, which its finish enqueued.
		if _, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = 'running', run_id = ? WHERE backfill_id = ? AND idx = ?`,
			run.ID, id, idx); err != nil {
			return err
		}
	}
}

// finishBackfill marks it finished once no partition is left running.
func (e *Engine) finishBackfill(ctx context.Context, id string, running int) error {
	if running > 0 {
		return nil
	}
	var failed int
	if err := e.be.pool().QueryRow(ctx, `SELECT count(*) FROM flowstone_backfill_partitions WHERE backfill_id = ? AND status <> 'succeeded'`, id).Scan(&failed); err != nil {
		return err
	}
	final := "succeeded"
	if failed > 0 {
		final = "failed"
	}
	n, err := e.be.pool().Exec(ctx, `UPDATE flowstone_backfills SET status = ?, finished_at = ? WHERE id = ? AND status = 'running'`, final, now(), id)
	if err == nil && n == 1 {
		e.log.InfoContext(ctx, "backfill finished", "backfill", id, "status", final)
	}
	return err
}

// BackfillStatus reads a backfill's progress.
func (e *Engine) BackfillStatus(ctx context.Context, id string) (BackfillStatus, error) {
	q := e.be.pool()
	b := BackfillStatus{ID: id, Partitions: map[flowstone.Partition]string{}}
	var created int64
	var finished sql.NullInt64
	err := q.QueryRow(ctx, `SELECT pipeline, status, created_at, finished_at FROM flowstone_backfills WHERE id = ?`, id).
		Scan(&b.Pipeline, &b.Status, &created, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return b, fmt.Errorf("%w: %s", ErrBackfillNotFound, id)
	}
	if err != nil {
		return b, err
	}
	b.CreatedAt, b.FinishedAt = time.UnixMicro(created), micros(finished)
	rs, err := q.Query(ctx, `SELECT bp.partition_key, bp.status, COALESCE(r.status, '')
		FROM flowstone_backfill_partitions bp LEFT JOIN flowstone_runs r ON r.id = bp.run_id
		WHERE bp.backfill_id = ? ORDER BY bp.idx`, id)
	if err != nil {
		return b, err
	}
	defer rs.Close()
	for rs.Next() {
		var k, st, runSt string
		if err := rs.Scan(&k, &st, &runSt); err != nil {
			return b, err
		}
		if (st == "running" || st == "launching") && runSt != "" && runSt != "running" {
			st = runSt // finished; the next advance records it
		}
		if st == "launching" {
			st = "running"
		}
		b.Partitions[flowstone.Partition(k)] = st
		b.Order = append(b.Order, flowstone.Partition(k))
		b.Total++
		switch st {
		case "pending":
			b.Pending++
		case "running":
			b.Running++
		case "succeeded":
			b.Succeeded++
		case "cancelled":
			b.Cancelled++
		default:
			b.Failed++
		}
	}
	return b, rs.Err()
}

// CancelBackfill stops a backfill: pending partitions are cancelled, and so
// are the runs of running ones.
func (e *Engine) CancelBackfill(ctx context.Context, id string) error {
	q := e.be.pool()
	n, err := q.Exec(ctx, `UPDATE flowstone_backfills SET status = 'cancelled', finished_at = ? WHERE id = ? AND status = 'running'`, now(), id)
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := e.BackfillStatus(ctx, id); err != nil {
			return err
		}
		return nil // already finished
	}
	if _, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = 'cancelled' WHERE backfill_id = ? AND status = 'pending'`, id); err != nil {
		return err
	}
	rs, err := q.Query(ctx, `SELECT run_id FROM flowstone_backfill_partitions WHERE backfill_id = ? AND status = 'running' AND run_id IS NOT NULL`, id)
	if err != nil {
		return err
	}
	var runs []string
	for rs.Next() {
		var r string
		if err := rs.Scan(&r); err != nil {
			rs.Close()
			return err
		}
		runs = append(runs, r)
	}
	rs.Close()
	for _, r := range runs {
		if err := e.Cancel(ctx, r); err != nil {
			return err
		}
	}
	_, err = q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status = 'cancelled' WHERE backfill_id = ? AND status IN ('running', 'launching')`, id)
	return err
}

// refreshBackfill gives partitions whose runs finished their run's status.
func refreshBackfill(ctx context.Context, q querier, id string) error {
	_, err := q.Exec(ctx, `UPDATE flowstone_backfill_partitions SET status =
		(SELECT r.status FROM flowstone_runs r WHERE r.id = flowstone_backfill_partitions.run_id)
		WHERE backfill_id = ? AND status = 'running'
		AND EXISTS (SELECT 1 FROM flowstone_runs r WHERE r.id = flowstone_backfill_partitions.run_id AND r.status <> 'running')`, id)
	return err
}

// refused reports whether Materialize rejected the request itself, so
// retrying it cannot help.
func refused(err error) bool {
	for _, target := range []error{flowstone.ErrInvalidPartition, ErrBadConfig, ErrMissingConfig, ErrUnknownAsset, ErrUnknownPipeline} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// backfillJob is the job that moves backfill id on: enqueued when it
// starts and by each of its runs that finishes or is cancelled.
func backfillJob(pipeline, id string) river.InsertManyParams {
	return river.InsertManyParams{Args: jobArgs{Pipeline: pipeline, Backfill: id},
		InsertOpts: &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom}}
}
