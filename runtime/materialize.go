package runtime

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
)

// Request asks for a run.
type Request struct {
	// Targets are asset keys; the run includes their upstream closure.
	// Empty means every asset of the pipeline.
	Targets []string
	// Partition is the key for the partitioned assets of the run; the
	// unpartitioned ones run at "".
	Partition flowstone.Partition
	// Config is the run's config: a value (or pointer) of the pipeline's
	// //flowstone:config type. It is stored with the run, so every process
	// that works on the run decodes the same config.
	Config any
	// Force recomputes assets that could be reused.
	Force bool
}

// Run identifies a started run.
type Run struct {
	ID        string
	Pipeline  string
	Partition flowstone.Partition
	// Assets in the run, in topological order.
	Assets []string
}

// rescueHeadroom is how many times a job may be taken over from a dead
// worker beyond the asset's own attempts before River gives up on it.
const rescueHeadroom = 20

// runCtx is what scheduling a run's assets needs to know of the run.
type runCtx struct {
	id         string
	p          *Pipeline
	partition  flowstone.Partition
	force      bool
	configHash string
}

// effects collects what a transaction does beyond SQL: jobs to insert in
// it, events to publish after it commits.
type effects struct {
	jobs   []river.InsertManyParams
	events []Event
}

func partitionFor(a *AssetDef, run flowstone.Partition) flowstone.Partition {
	if a.Partitions == nil {
		return ""
	}
	return run
}

// Materialize validates req, records a run and enqueues the assets that are
// ready, in one transaction: a request that fails validation leaves nothing
// behind. Use Wait to follow the run.
func (e *Engine) Materialize(ctx context.Context, p *Pipeline, req Request) (Run, error) {
	if e.closed.Load() {
		return Run{}, ErrClosed
	}
	if p == nil {
		return Run{}, fmt.Errorf("%w: nil pipeline", ErrUnknownPipeline)
	}
	assets, err := p.Closure(req.Targets)
	if err != nil {
		return Run{}, err
	}
	if err := checkPartition(p, assets, req.Partition); err != nil {
		return Run{}, err
	}
	var cfgJSON []byte
	var usesConfig []string
	for _, a := range assets {
		if a.UsesConfig {
			usesConfig = append(usesConfig, a.Key)
		}
	}
	switch {
	case req.Config != nil && p.config == nil:
		return Run{}, fmt.Errorf("%w: pipeline %s takes no config, got %T", ErrBadConfig, p.name, req.Config)
	case req.Config != nil:
		if cfgJSON, err = p.config.Encode(req.Config); err != nil {
			return Run{}, err
		}
	case len(usesConfig) > 0:
		return Run{}, fmt.Errorf("%w: assets %s take a %s; set Request.Config", ErrMissingConfig, strings.Join(usesConfig, ", "), p.config.typeName)
	}
	targets, _ := json.Marshal(req.Targets)
	run := &runCtx{id: newID("run_"), p: p, partition: req.Partition, force: req.Force}
	if cfgJSON != nil {
		sum := sha256.Sum256(cfgJSON)
		run.configHash = hex.EncodeToString(sum[:12])
	}

	var fx effects
	err = e.be.inTx(ctx, func(tx txn) error {
		fx = effects{}
		var cfg any
		if cfgJSON != nil {
			cfg = string(cfgJSON)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO flowstone_runs
			(id, pipeline, partition_key, targets, config, config_hash, force, status, pending, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			run.id, p.name, string(req.Partition), string(targets), cfg, run.configHash, boolInt(req.Force),
			string(RunRunning), len(assets), now()); err != nil {
			return fmt.Errorf("record run: %w", err)
		}
		inRun := map[string]bool{}
		for _, a := range assets {
			inRun[a.Key] = true
		}
		remaining := make([]int, len(assets))
		required := make([]int, len(assets))
		for i, a := range assets {
			for _, up := range depAssets(a, inRun) {
				remaining[i]++
				if !tolerates(a, up) {
					required[i]++
				}
			}
			if d, ok := a.Strategy.(strategy.Deadliner); ok && d.Deadline() > 0 && remaining[i] > 0 {
				p := e.jobParams(run, a, partitionFor(a, run.partition), nil)
				p.Args = withDeadline(p.Args)
				p.InsertOpts.ScheduledAt = time.Now().Add(d.Deadline())
				fx.jobs = append(fx.jobs, p)
			}
		}
		if err := insertRunAssets(ctx, tx, run, assets, remaining, required); err != nil {
			return err
		}
		for i, a := range assets {
			if remaining[i] == 0 {
				if err := e.resolve(ctx, tx, run, a, "", &fx); err != nil {
					return err
				}
			}
		}
		return tx.insertJobs(ctx, fx.jobs)
	})
	if err != nil {
		return Run{}, fmt.Errorf("materialize %s: %w", p.name, err)
	}
	keys := make([]string, len(assets))
	for i, a := range assets {
		keys[i] = a.Key
	}
	e.events.publish(append([]Event{{Kind: EventRunStarted, Pipeline: p.name, RunID: run.id, Partition: req.Partition, Status: string(RunRunning)}}, fx.events...)...)
	e.log.InfoContext(ctx, "run started", "run", run.id, "pipeline", p.name, "partition", req.Partition, "assets", len(assets))
	return Run{ID: run.id, Pipeline: p.name, Partition: req.Partition, Assets: keys}, nil
}

func checkPartition(p *Pipeline, assets []*AssetDef, key flowstone.Partition) error {
	var partitioned []*AssetDef
	for _, a := range assets {
		if a.Partitions != nil {
			partitioned = append(partitioned, a)
		}
	}
	if len(partitioned) == 0 {
		if key != "" {
			return fmt.Errorf("%w %q: the assets of this run are unpartitioned", flowstone.ErrInvalidPartition, key)
		}
		return nil
	}
	if key == "" {
		a := partitioned[0]
		return fmt.Errorf("%w: asset %s is partitioned (%s): give a partition key, e.g. %q", flowstone.ErrInvalidPartition, a.Key, a.Partitions.Kind(), a.Partitions.Example())
	}
	for _, a := range partitioned {
		if err := a.Partitions.Validate(key); err != nil {
			return fmt.Errorf("asset %s: %w", a.Key, err)
		}
	}
	return nil
}

// depAssets returns the distinct upstream assets of a that are in the run
// and order it (Previous does not).
func depAssets(a *AssetDef, inRun map[string]bool) []string {
	var out []string
	for _, d := range a.Deps {
		if d.Kind == DepPrevious || !inRun[d.Asset] {
			continue
		}
		if !containsStr(out, d.Asset) {
			out = append(out, d.Asset)
		}
	}
	return out
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// tolerates reports whether a may run whatever up's outcome: every
// dependency of a on up is an Outcome.
func tolerates(a *AssetDef, up string) bool {
	for _, d := range a.Deps {
		if d.Asset == up && d.Kind != DepPrevious && !d.Kind.Tolerant() {
			return false
		}
	}
	return true
}

func withDeadline(args river.JobArgs) jobArgs {
	a := args.(jobArgs)
	a.Deadline = true
	return a
}

func insertRunAssets(ctx context.Context, tx txn, run *runCtx, assets []*AssetDef, remaining, required []int) error {
	const chunk = 200
	for start := 0; start < len(assets); start += chunk {
		end := min(start+chunk, len(assets))
		var b strings.Builder
		b.WriteString(`INSERT INTO flowstone_run_assets (run_id, asset, partition_key, status, remaining, required) VALUES `)
		args := make([]any, 0, 6*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			a := assets[i]
			args = append(args, run.id, a.Key, string(partitionFor(a, run.partition)), string(StatusPending), remaining[i], required[i])
		}
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record run assets: %w", err)
		}
	}
	return nil
}

// upstream is one dependency's state within a run.
type upstream struct {
	asset, partition string
	status           AssetStatus
	mat, err         string
}

func loadUpstreams(ctx context.Context, q querier, run *runCtx, a *AssetDef) (map[string]upstream, error) {
	out := map[string]upstream{}
	var keys []string
	args := []any{run.id}
	for _, d := range a.Deps {
		if d.Kind == DepPrevious || containsStr(keys, d.Asset) {
			continue
		}
		keys = append(keys, d.Asset)
		args = append(args, d.Asset)
	}
	if len(keys) == 0 {
		return out, nil
	}
	rs, err := q.Query(ctx, `SELECT asset, partition_key, status, COALESCE(materialization_id, ''), error
		FROM flowstone_run_assets WHERE run_id = ? AND asset IN (`+placeholders(len(keys))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var u upstream
		var st string
		if err := rs.Scan(&u.asset, &u.partition, &st, &u.mat, &u.err); err != nil {
			return nil, err
		}
		u.status = AssetStatus(st)
		if up := run.p.Asset(u.asset); up != nil && u.partition != string(partitionFor(up, run.partition)) {
			continue
		}
		out[u.asset] = u
	}
	return out, rs.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// inputHash identifies the exact upstream materializations an asset reads.
func inputHash(ups map[string]upstream) string {
	lines := make([]string, 0, len(ups))
	for _, u := range ups {
		// The materialization read, whether produced in this run or reused;
		// the status only for upstreams that produced none (skipped).
		id := u.mat
		if id == "" {
			id = string(u.status)
		}
		lines = append(lines, u.asset+"@"+u.partition+"="+id)
	}
	sort.Strings(lines)
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(sum[:12])
}

// resolve acts on an asset whose dependencies are all terminal: it is
// blocked (a required dependency failed or was skipped), reusable, or
// enqueued. blocked is the row's blocked column when the caller has it.
func (e *Engine) resolve(ctx context.Context, tx txn, run *runCtx, a *AssetDef, blocked string, fx *effects) error {
	part := partitionFor(a, run.partition)
	if blocked != "" {
		var msg string
		if err := tx.QueryRow(ctx, `UPDATE flowstone_run_assets SET status = ?, finished_at = ?
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ? RETURNING error`,
			blocked, now(), run.id, a.Key, string(part), string(StatusPending)).Scan(&msg); err != nil {
			return fmt.Errorf("block %s: %w", a.Key, err)
		}
		return e.finish(ctx, tx, run, a, AssetStatus(blocked), msg, fx)
	}
	if !run.force {
		ups, err := loadUpstreams(ctx, tx, run, a)
		if err != nil {
			return err
		}
		cfgHash := ""
		if a.UsesConfig {
			cfgHash = run.configHash
		}
		var mat string
		err = tx.QueryRow(ctx, `SELECT id FROM flowstone_materializations
			WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = 'succeeded'
			AND code_version = ? AND config_hash = ? AND input_hash = ?
			ORDER BY finished_at DESC LIMIT 1`,
			run.p.name, a.Key, string(part), a.CodeVersion, cfgHash, inputHash(ups)).Scan(&mat)
		switch {
		case err == nil:
			if _, err := tx.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, materialization_id = ?, finished_at = ?
				WHERE run_id = ? AND asset = ? AND partition_key = ?`,
				string(StatusReused), mat, now(), run.id, a.Key, string(part)); err != nil {
				return err
			}
			return e.finish(ctx, tx, run, a, StatusReused, "", fx)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("reuse check %s: %w", a.Key, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE flowstone_run_assets SET status = ? WHERE run_id = ? AND asset = ? AND partition_key = ?`,
		string(StatusQueued), run.id, a.Key, string(part)); err != nil {
		return err
	}
	fx.jobs = append(fx.jobs, e.jobParams(run, a, part, nil))
	return nil
}

func (e *Engine) jobParams(run *runCtx, a *AssetDef, part flowstone.Partition, resume json.RawMessage) river.InsertManyParams {
	opts := &river.InsertOpts{
		MaxAttempts: a.Retries + 1 + rescueHeadroom,
		Queue:       a.Queue,
		Priority:    a.Priority,
	}
	if resume != nil {
		opts.MaxAttempts = 1 + rescueHeadroom
	}
	return river.InsertManyParams{
		Args:       jobArgs{Pipeline: run.p.name, Run: run.id, Asset: a.Key, Partition: string(part), Resume: resume},
		InsertOpts: opts,
	}
}

// finish propagates a terminal status: each dependent in the run counts one
// dependency fewer (and is blocked if it required this one and it did not
// succeed); a dependent left with none is resolved; the run's pending count
// drops, and the transaction that takes it to zero finishes the run. Row
// locks on the dependent and run rows make a fan-in resolve exactly once.
func (e *Engine) finish(ctx context.Context, tx txn, run *runCtx, a *AssetDef, status AssetStatus, errMsg string, fx *effects) error {
	part := partitionFor(a, run.partition)
	fx.events = append(fx.events, Event{Kind: EventAssetFinished, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(status), Error: errMsg})
	for _, dk := range run.p.Downstream(a.Key) {
		d := run.p.Asset(dk)
		tolerant := tolerates(d, a.Key)
		block, reason := "", ""
		if !tolerant {
			switch {
			case status.failedish() || status == StatusCancelled:
				block, reason = string(StatusUpstreamFailed), "upstream "+a.Key+" "+string(status)
			case status == StatusSkipped:
				block, reason = string(StatusSkipped), "upstream "+a.Key+" skipped"
			}
		}
		var remaining, required, early int
		var blocked string
		err := tx.QueryRow(ctx, `UPDATE flowstone_run_assets SET remaining = remaining - 1, required = required - ?,
			blocked = CASE WHEN ? = '' OR blocked = 'upstream_failed' THEN blocked ELSE ? END,
			error = CASE WHEN ? = '' OR error <> '' THEN error ELSE ? END
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?
			RETURNING remaining, required, early, blocked`,
			boolInt(!tolerant), block, block, reason, reason, run.id, d.Key, string(partitionFor(d, run.partition)), string(StatusPending)).
			Scan(&remaining, &required, &early, &blocked)
		if errors.Is(err, sql.ErrNoRows) {
			continue // not in this run
		}
		if err != nil {
			return fmt.Errorf("propagate %s to %s: %w", a.Key, d.Key, err)
		}
		if remaining == 0 || early == 1 && required == 0 {
			if err := e.resolve(ctx, tx, run, d, blocked, fx); err != nil {
				return err
			}
		}
	}
	var pending, failed int
	var runStatus string
	if err := tx.QueryRow(ctx, `UPDATE flowstone_runs SET pending = pending - 1, failed = failed + ?
		WHERE id = ? RETURNING pending, failed, status`,
		boolInt(status.failedish()), run.id).Scan(&pending, &failed, &runStatus); err != nil {
		return fmt.Errorf("run %s: %w", run.id, err)
	}
	if pending == 0 && RunStatus(runStatus) == RunRunning {
		final := RunSucceeded
		if failed > 0 {
			final = RunFailed
		}
		if _, err := tx.Exec(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ?`, string(final), now(), run.id); err != nil {
			return err
		}
		fx.events = append(fx.events, Event{Kind: EventRunFinished, Pipeline: run.p.name, RunID: run.id, Partition: run.partition, Status: string(final)})
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
