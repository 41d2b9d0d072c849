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
	// RunKey, when set, makes the request happen once per pipeline:
	// Materialize with a key already used returns that run (Run.Existing).
	RunKey string
}

// Run identifies a started run.
type Run struct {
	ID        string
	Pipeline  string
	Partition flowstone.Partition
	// Assets in the run, in topological order.
	Assets []string
	// Existing is set when RunKey named a run that already existed; it was
	// not started again.
	Existing bool
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
	backfill   string // the backfill the run belongs to, if any
}

// effects collects what a transaction does beyond SQL: jobs to insert in
// it, events to publish after it commits, and the assets it made terminal,
// whose dependents are checked in a later transaction (see advance).
type effects struct {
	jobs     []river.InsertManyParams
	events   []Event
	terminal []*AssetDef
	// open is set when the transaction saw the run has work left.
	open bool
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
	return e.materialize(ctx, p, req, "")
}

// materialize is Materialize for a run that belongs to backfill (or none).
func (e *Engine) materialize(ctx context.Context, p *Pipeline, req Request, backfill string) (Run, error) {
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
	if err := e.checkDynamic(ctx, assets, req.Partition); err != nil {
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
	run := &runCtx{id: newID("run_"), p: p, partition: req.Partition, force: req.Force, backfill: backfill}
	if cfgJSON != nil {
		sum := sha256.Sum256(cfgJSON)
		run.configHash = hex.EncodeToString(sum[:12])
	}

	var fx effects
	existing := ""
	err = e.be.inTx(ctx, func(tx txn) error {
		fx, existing = effects{}, ""
		var cfg any
		if cfgJSON != nil {
			cfg = string(cfgJSON)
		}
		n, err := tx.Exec(ctx, `INSERT INTO flowstone_runs
			(id, pipeline, partition_key, targets, config, config_hash, force, status, total, created_at, run_key, backfill_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			run.id, p.name, string(req.Partition), string(targets), cfg, run.configHash, boolInt(req.Force),
			string(RunRunning), len(assets), now(), req.RunKey, backfill)
		if err != nil {
			return fmt.Errorf("record run: %w", err)
		}
		if n == 0 && req.RunKey != "" {
			return tx.QueryRow(ctx, `SELECT id FROM flowstone_runs WHERE pipeline = ? AND run_key = ?`, p.name, req.RunKey).Scan(&existing)
		}
		inRun := map[string]bool{}
		for _, a := range assets {
			inRun[a.Key] = true
		}
		deps := make([]int, len(assets))
		required := make([]int, len(assets))
		for i, a := range assets {
			for _, up := range depAssets(a, inRun) {
				deps[i]++
				if !tolerates(a, up) {
					required[i]++
				}
			}
			if d, ok := a.Strategy.(strategy.Deadliner); ok && d.Deadline() > 0 && deps[i] > 0 {
				p := e.jobParams(run, a, partitionFor(a, run.partition), nil)
				p.Args = withDeadline(p.Args)
				p.InsertOpts.ScheduledAt = time.Now().Add(d.Deadline())
				fx.jobs = append(fx.jobs, p)
			}
		}
		if err := insertRunAssets(ctx, tx, run, assets, deps, required); err != nil {
			return err
		}
		for i, a := range assets {
			if deps[i] == 0 {
				if _, err := e.resolve(ctx, tx, run, a, "", "", &fx); err != nil {
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
	if existing != "" {
		return Run{ID: existing, Pipeline: p.name, Partition: req.Partition, Assets: keys, Existing: true}, nil
	}
	// Roots that were reused: their dependents, and maybe the whole run.
	if err := e.advance(ctx, run, fx.terminal, nil); err != nil {
		return Run{}, fmt.Errorf("materialize %s: %w", p.name, err)
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

func insertRunAssets(ctx context.Context, tx txn, run *runCtx, assets []*AssetDef, deps, required []int) error {
	const chunk = 200
	for start := 0; start < len(assets); start += chunk {
		end := min(start+chunk, len(assets))
		var b strings.Builder
		b.WriteString(`INSERT INTO flowstone_run_assets (run_id, asset, partition_key, status, deps, required) VALUES `)
		args := make([]any, 0, 6*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			a := assets[i]
			args = append(args, run.id, a.Key, string(partitionFor(a, run.partition)), string(StatusPending), deps[i], required[i])
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

// resolve acts on an asset whose dependencies allow it to start: it is
// blocked (a required dependency failed or was skipped: blocked is the
// status, reason says which), reusable, or enqueued. It claims the asset
// with a conditional update, so of two transactions that find it ready only
// one acts; claimed reports whether this one did.
func (e *Engine) resolve(ctx context.Context, tx txn, run *runCtx, a *AssetDef, blocked, reason string, fx *effects) (claimed bool, err error) {
	part := partitionFor(a, run.partition)
	claim := func(status AssetStatus, mat any, msg string) (bool, error) {
		var fin any
		if status.Terminal() {
			fin = now()
		}
		n, err := tx.Exec(ctx, `UPDATE flowstone_run_assets SET status = ?, materialization_id = ?, error = ?, finished_at = ?
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
			string(status), mat, msg, fin, run.id, a.Key, string(part), string(StatusPending))
		return n == 1, err
	}
	if blocked != "" {
		ok, err := claim(AssetStatus(blocked), nil, reason)
		if !ok || err != nil {
			return false, err
		}
		return true, e.markTerminal(ctx, tx, run, a, AssetStatus(blocked), reason, fx)
	}
	if !run.force {
		ups, err := loadUpstreams(ctx, tx, run, a)
		if err != nil {
			return false, err
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
			ok, err := claim(StatusReused, mat, "")
			if !ok || err != nil {
				return false, err
			}
			return true, e.markTerminal(ctx, tx, run, a, StatusReused, "", fx)
		case !errors.Is(err, sql.ErrNoRows):
			return false, fmt.Errorf("reuse check %s: %w", a.Key, err)
		}
	}
	ok, err := claim(StatusQueued, nil, "")
	if !ok || err != nil {
		return false, err
	}
	fx.jobs = append(fx.jobs, e.jobParams(run, a, part, nil))
	return true, nil
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

// markTerminal records, for each dependent of a in the run, that a has
// arrived: with what it does to the dependent (block) and whether the
// dependent requires it. The caller has set a's status in the same
// transaction. Dependents are checked for readiness by advance, after this
// transaction commits.
func (e *Engine) markTerminal(ctx context.Context, tx txn, run *runCtx, a *AssetDef, status AssetStatus, errMsg string, fx *effects) error {
	part := partitionFor(a, run.partition)
	fx.events = append(fx.events, Event{Kind: EventAssetFinished, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(status), Error: errMsg})
	fx.terminal = append(fx.terminal, a)
	for _, dk := range run.p.Downstream(a.Key) {
		d := run.p.Asset(dk)
		required := !tolerates(d, a.Key)
		block := ""
		if required {
			switch {
			case status.failedish() || status == StatusCancelled:
				block = string(StatusUpstreamFailed)
			case status == StatusSkipped:
				block = string(StatusSkipped)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO flowstone_arrivals (run_id, asset, partition_key, upstream, required, block)
			SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT)
			WHERE EXISTS (SELECT 1 FROM flowstone_run_assets WHERE run_id = ? AND asset = ? AND partition_key = ?)
			ON CONFLICT (run_id, asset, partition_key, upstream) DO NOTHING`,
			run.id, d.Key, string(partitionFor(d, run.partition)), a.Key, boolInt(required), block,
			run.id, d.Key, string(partitionFor(d, run.partition))); err != nil {
			return fmt.Errorf("record arrival of %s at %s: %w", a.Key, d.Key, err)
		}
	}
	return nil
}

// advance moves a run on after transactions that made assets terminal
// have committed: each dependent whose dependencies have all arrived (or,
// past its deadline, its required ones) is resolved, and a run with nothing
// left to do is finished. Assets that resolving makes terminal (reused,
// blocked) are advanced in turn, each round in a transaction that starts
// after the previous committed. That ordering is what makes a fan-in start
// exactly once: of the upstreams that finish together, the last to commit
// sees every arrival, and the claim in resolve lets only one act. job, when
// set, is completed in the first round.
func (e *Engine) advance(ctx context.Context, run *runCtx, terminal []*AssetDef, job *river.Job[jobArgs]) error {
	for first := true; first || len(terminal) > 0; first = false {
		var fx effects
		err := e.be.inTx(ctx, func(tx txn) error {
			fx = effects{}
			seen := map[string]bool{}
			for _, a := range terminal {
				for _, dk := range run.p.Downstream(a.Key) {
					if seen[dk] {
						continue
					}
					seen[dk] = true
					if err := e.checkReady(ctx, tx, run, run.p.Asset(dk), &fx); err != nil {
						return err
					}
				}
			}
			if !fx.open && len(fx.jobs) == 0 {
				if err := e.checkRunDone(ctx, tx, run, &fx); err != nil {
					return err
				}
			}
			if err := tx.insertJobs(ctx, fx.jobs); err != nil {
				return err
			}
			if first && job != nil {
				return tx.completeJob(ctx, job)
			}
			return nil
		})
		if err != nil {
			return err
		}
		e.events.publish(fx.events...)
		terminal = fx.terminal
	}
	return nil
}

// checkReady resolves d if it is pending and its dependencies allow it.
func (e *Engine) checkReady(ctx context.Context, tx txn, run *runCtx, d *AssetDef, fx *effects) error {
	part := string(partitionFor(d, run.partition))
	var status string
	var deps, required, early, arrived, arrivedRequired, worst int
	err := tx.QueryRow(ctx, `SELECT ra.status, ra.deps, ra.required, ra.early, count(ar.upstream), COALESCE(sum(ar.required), 0),
		COALESCE(max(CASE ar.block WHEN 'upstream_failed' THEN 2 WHEN 'skipped' THEN 1 ELSE 0 END), 0)
		FROM flowstone_run_assets ra LEFT JOIN flowstone_arrivals ar
			ON ar.run_id = ra.run_id AND ar.asset = ra.asset AND ar.partition_key = ra.partition_key
		WHERE ra.run_id = ? AND ra.asset = ? AND ra.partition_key = ?
		GROUP BY ra.status, ra.deps, ra.required, ra.early`, run.id, d.Key, part).
		Scan(&status, &deps, &required, &early, &arrived, &arrivedRequired, &worst)
	if errors.Is(err, sql.ErrNoRows) || err == nil && AssetStatus(status) != StatusPending {
		return nil // not in this run, or already resolved
	}
	if err != nil {
		return err
	}
	if arrived < deps && (early == 0 || arrivedRequired < required) {
		fx.open = true // the run has work left
		return nil
	}
	blocked, reason := "", ""
	if worst > 0 {
		var up, block string
		if err := tx.QueryRow(ctx, `SELECT upstream, block FROM flowstone_arrivals
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND block <> ''
			ORDER BY CASE block WHEN 'upstream_failed' THEN 0 ELSE 1 END, upstream LIMIT 1`, run.id, d.Key, part).
			Scan(&up, &block); err != nil {
			return err
		}
		var upStatus string
		if err := tx.QueryRow(ctx, `SELECT status FROM flowstone_run_assets WHERE run_id = ? AND asset = ?
			ORDER BY partition_key LIMIT 1`, run.id, up).Scan(&upStatus); err != nil {
			return err
		}
		blocked, reason = block, "upstream "+up+" "+upStatus
	}
	_, err = e.resolve(ctx, tx, run, d, blocked, reason, fx)
	return err
}

// checkRunDone finishes the run once none of its assets is left to do.
func (e *Engine) checkRunDone(ctx context.Context, tx txn, run *runCtx, fx *effects) error {
	var open int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM flowstone_run_assets
		WHERE run_id = ? AND status IN (?, ?, ?, ?) LIMIT 1) x`,
		run.id, string(StatusPending), string(StatusQueued), string(StatusRunning), string(StatusWaiting)).Scan(&open); err != nil {
		return err
	}
	if open > 0 {
		return nil
	}
	var failed int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM flowstone_run_assets WHERE run_id = ? AND status IN (?, ?)`,
		run.id, string(StatusFailed), string(StatusUpstreamFailed)).Scan(&failed); err != nil {
		return err
	}
	final := RunSucceeded
	if failed > 0 {
		final = RunFailed
	}
	n, err := tx.Exec(ctx, `UPDATE flowstone_runs SET status = ?, finished_at = ? WHERE id = ? AND status = ?`,
		string(final), now(), run.id, string(RunRunning))
	if err != nil || n == 0 {
		return err
	}
	fx.events = append(fx.events, Event{Kind: EventRunFinished, Pipeline: run.p.name, RunID: run.id, Partition: run.partition, Status: string(final)})
	if run.backfill != "" {
		// The backfill launches its next partitions in a job of its own.
		fx.jobs = append(fx.jobs, river.InsertManyParams{Args: jobArgs{Pipeline: run.p.name, Backfill: run.backfill},
			InsertOpts: &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom}})
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
