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
	// Empty (with Select empty) means every asset of the pipeline.
	Targets []string
	// Select selects targets with the selection grammar (see
	// Pipeline.Select): "+daily_revenue", "group:finance and tag:pii",
	// "raw_orders+1". The run's targets are the union of Select and
	// Targets; the run includes their upstream closure, reused when up to
	// date.
	Select string
	// Partition is the key for the partitioned assets of the run; the
	// unpartitioned ones run at "".
	Partition flowstone.Partition
	// Config is the run's config: a value (or pointer) of the pipeline's
	// //flowstone:config type. It is stored with the run, so every process
	// that works on the run decodes the same config.
	Config any
	// Force recomputes the targets (the selection) even when they could
	// be reused; their upstream closure is still reused when up to date.
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
	id        string
	p         *Pipeline
	partition flowstone.Partition
	// forced holds the assets Force recomputes: the run's targets.
	forced     map[string]bool
	configHash string
	backfill   string // the backfill the run belongs to, if any
}

// forcedSet returns the assets a forced run recomputes: its targets, or
// every asset when it has none.
func forcedSet(p *Pipeline, force bool, targets []string) map[string]bool {
	if !force {
		return nil
	}
	set := map[string]bool{}
	for _, t := range targets {
		set[t] = true
	}
	if len(targets) == 0 {
		for _, a := range p.assets {
			set[a.Key] = true
		}
	}
	return set
}

// effects collects what a transaction does beyond SQL: jobs to insert in
// it, events to publish after it commits, and the assets it made terminal,
// whose dependents are checked in a later transaction (see advance).
type effects struct {
	jobs     []river.InsertManyParams
	events   []Event
	terminal []node
	// open is set when the transaction saw the run has work left.
	open bool
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
	targets, err := p.targets(req.Targets, req.Select)
	if err != nil {
		return Run{}, err
	}
	assets, err := p.Closure(targets)
	if err != nil {
		return Run{}, err
	}
	plan, err := e.plan(ctx, p, assets, targets, req.Partition)
	if err != nil {
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
	targetsJSON, _ := json.Marshal(targets)
	run := &runCtx{id: newID("run_"), p: p, partition: req.Partition, forced: forcedSet(p, req.Force, targets), backfill: backfill}
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
			run.id, p.name, string(req.Partition), string(targetsJSON), cfg, run.configHash, boolInt(req.Force),
			string(RunRunning), len(plan.nodes), now(), req.RunKey, backfill)
		if err != nil {
			return fmt.Errorf("record run: %w", err)
		}
		if n == 0 && req.RunKey != "" {
			return tx.QueryRow(ctx, `SELECT id FROM flowstone_runs WHERE pipeline = ? AND run_key = ?`, p.name, req.RunKey).Scan(&existing)
		}
		deps := map[string]int{}
		required := map[string]int{}
		for _, ed := range plan.edges {
			id := nodeID(ed.down.a.Key, ed.down.key)
			deps[id]++
			if ed.required {
				required[id]++
			}
		}
		for _, n := range plan.nodes {
			if d, ok := n.a.Strategy.(strategy.Deadliner); ok && d.Deadline() > 0 && deps[nodeID(n.a.Key, n.key)] > 0 {
				jp := e.jobParams(run, n.a, n.key, nil)
				jp.Args = withDeadline(jp.Args)
				jp.InsertOpts.ScheduledAt = time.Now().Add(d.Deadline())
				fx.jobs = append(fx.jobs, jp)
			}
		}
		if err := insertRunNodes(ctx, tx, run, plan, deps, required); err != nil {
			return err
		}
		for _, n := range plan.nodes {
			if deps[nodeID(n.a.Key, n.key)] == 0 {
				if _, err := e.resolve(ctx, tx, run, n.a, n.key, "", "", &fx); err != nil {
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

// plan maps the request's key over the closure and checks every key,
// dynamic set membership included.
func (e *Engine) plan(ctx context.Context, p *Pipeline, closure []*AssetDef, targets []string, key flowstone.Partition) (*runPlan, error) {
	plan, err := planRun(p, closure, targets, key)
	if err != nil {
		return nil, err
	}
	for _, n := range plan.nodes {
		if err := e.checkDynamic(ctx, []*AssetDef{n.a}, n.key); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func withDeadline(args river.JobArgs) jobArgs {
	a := args.(jobArgs)
	a.Deadline = true
	return a
}

func insertRunNodes(ctx context.Context, tx txn, run *runCtx, plan *runPlan, deps, required map[string]int) error {
	const chunk = 200
	for start := 0; start < len(plan.nodes); start += chunk {
		end := min(start+chunk, len(plan.nodes))
		var b strings.Builder
		b.WriteString(`INSERT INTO flowstone_run_assets (run_id, asset, partition_key, status, deps, required) VALUES `)
		args := make([]any, 0, 6*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			n := plan.nodes[i]
			id := nodeID(n.a.Key, n.key)
			args = append(args, run.id, n.a.Key, string(n.key), string(StatusPending), deps[id], required[id])
		}
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record run assets: %w", err)
		}
	}
	for start := 0; start < len(plan.edges); start += chunk {
		end := min(start+chunk, len(plan.edges))
		var b strings.Builder
		b.WriteString(`INSERT INTO flowstone_run_edges (run_id, asset, partition_key, upstream, upstream_partition, required) VALUES `)
		args := make([]any, 0, 6*(end-start))
		for i := start; i < end; i++ {
			if i > start {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?)")
			ed := plan.edges[i]
			args = append(args, run.id, ed.down.a.Key, string(ed.down.key), ed.up.a.Key, string(ed.up.key), boolInt(ed.required))
		}
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("record run edges: %w", err)
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

// loadUpstreams returns the upstream nodes of a at key in the run, with
// their state, ordered by asset and partition.
func loadUpstreams(ctx context.Context, q querier, run *runCtx, a *AssetDef, key flowstone.Partition) ([]upstream, error) {
	rs, err := q.Query(ctx, `SELECT e.upstream, e.upstream_partition, ra.status, COALESCE(ra.materialization_id, ''), ra.error
		FROM flowstone_run_edges e JOIN flowstone_run_assets ra
			ON ra.run_id = e.run_id AND ra.asset = e.upstream AND ra.partition_key = e.upstream_partition
		WHERE e.run_id = ? AND e.asset = ? AND e.partition_key = ?
		ORDER BY e.upstream, e.upstream_partition`, run.id, a.Key, string(key))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []upstream
	for rs.Next() {
		var u upstream
		var st string
		if err := rs.Scan(&u.asset, &u.partition, &st, &u.mat, &u.err); err != nil {
			return nil, err
		}
		u.status = AssetStatus(st)
		out = append(out, u)
	}
	return out, rs.Err()
}

// find returns the first upstream row of asset.
func find(ups []upstream, asset string) (upstream, bool) {
	for _, u := range ups {
		if u.asset == asset {
			return u, true
		}
	}
	return upstream{}, false
}

// inputHash identifies the exact upstream materializations an asset reads.
func inputHash(ups []upstream) string {
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
func (e *Engine) resolve(ctx context.Context, tx txn, run *runCtx, a *AssetDef, part flowstone.Partition, blocked, reason string, fx *effects) (claimed bool, err error) {
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
		return true, e.markTerminal(ctx, tx, run, a, part, AssetStatus(blocked), reason, fx)
	}
	if !run.forced[a.Key] {
		ups, err := loadUpstreams(ctx, tx, run, a, part)
		if err != nil {
			return false, err
		}
		cfgHash := ""
		if a.UsesConfig {
			cfgHash = run.configHash
		}
		var mat string
		// On PostgreSQL the row is locked until the claim commits, so
		// Prune, which locks before it deletes, either waits and then sees
		// the claim, or has deleted the row and this finds the next one.
		lock := ""
		if e.dialect == "postgres" {
			lock = " FOR SHARE"
		}
		err = tx.QueryRow(ctx, `SELECT id FROM flowstone_materializations
			WHERE pipeline = ? AND asset = ? AND partition_key = ? AND status = 'succeeded'
			AND code_version = ? AND config_hash = ? AND input_hash = ?
			ORDER BY finished_at DESC, id DESC LIMIT 1`+lock,
			run.p.name, a.Key, string(part), a.CodeVersion, cfgHash, inputHash(ups)).Scan(&mat)
		switch {
		case err == nil:
			ok, err := claim(StatusReused, mat, "")
			if !ok || err != nil {
				return false, err
			}
			return true, e.markTerminal(ctx, tx, run, a, part, StatusReused, "", fx)
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
func (e *Engine) markTerminal(ctx context.Context, tx txn, run *runCtx, a *AssetDef, part flowstone.Partition, status AssetStatus, errMsg string, fx *effects) error {
	fx.events = append(fx.events, Event{Kind: EventAssetFinished, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(status), Error: errMsg})
	fx.terminal = append(fx.terminal, node{a, part})
	block := ""
	switch {
	case status.failedish() || status == StatusCancelled:
		block = string(StatusUpstreamFailed)
	case status == StatusSkipped:
		block = string(StatusSkipped)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO flowstone_arrivals (run_id, asset, partition_key, upstream, upstream_partition, required, block)
		SELECT run_id, asset, partition_key, upstream, upstream_partition, required, CASE WHEN required = 1 THEN CAST(? AS TEXT) ELSE '' END
		FROM flowstone_run_edges WHERE run_id = ? AND upstream = ? AND upstream_partition = ?
		ON CONFLICT DO NOTHING`, block, run.id, a.Key, string(part)); err != nil {
		return fmt.Errorf("record arrivals of %s: %w", a.Key, err)
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
func (e *Engine) advance(ctx context.Context, run *runCtx, terminal []node, job *river.Job[jobArgs]) error {
	for first := true; first || len(terminal) > 0; first = false {
		var fx effects
		err := e.be.inTx(ctx, func(tx txn) error {
			fx = effects{}
			seen := map[string]bool{}
			for _, n := range terminal {
				downs, err := downstreamNodes(ctx, tx, run, n)
				if err != nil {
					return err
				}
				for _, d := range downs {
					if id := nodeID(d.a.Key, d.key); !seen[id] {
						seen[id] = true
						if err := e.checkReady(ctx, tx, run, d.a, d.key, &fx); err != nil {
							return err
						}
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

// downstreamNodes returns the nodes of the run that depend on n.
func downstreamNodes(ctx context.Context, q querier, run *runCtx, n node) ([]node, error) {
	rs, err := q.Query(ctx, `SELECT asset, partition_key FROM flowstone_run_edges WHERE run_id = ? AND upstream = ? AND upstream_partition = ?
		ORDER BY asset, partition_key`, run.id, n.a.Key, string(n.key))
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []node
	for rs.Next() {
		var a, k string
		if err := rs.Scan(&a, &k); err != nil {
			return nil, err
		}
		if def := run.p.Asset(a); def != nil {
			out = append(out, node{def, flowstone.Partition(k)})
		}
	}
	return out, rs.Err()
}

// checkReady resolves d at key if it is pending and its dependencies allow
// it.
func (e *Engine) checkReady(ctx context.Context, tx txn, run *runCtx, d *AssetDef, key flowstone.Partition, fx *effects) error {
	part := string(key)
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
		var up, upPart, block string
		if err := tx.QueryRow(ctx, `SELECT upstream, upstream_partition, block FROM flowstone_arrivals
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND block <> ''
			ORDER BY CASE block WHEN 'upstream_failed' THEN 0 ELSE 1 END, upstream, upstream_partition LIMIT 1`, run.id, d.Key, part).
			Scan(&up, &upPart, &block); err != nil {
			return err
		}
		var upStatus string
		if err := tx.QueryRow(ctx, `SELECT status FROM flowstone_run_assets WHERE run_id = ? AND asset = ? AND partition_key = ?`,
			run.id, up, upPart).Scan(&upStatus); err != nil {
			return err
		}
		if upPart != part && upPart != "" {
			up += " (" + upPart + ")"
		}
		blocked, reason = block, "upstream "+up+" "+upStatus
	}
	_, err = e.resolve(ctx, tx, run, d, key, blocked, reason, fx)
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
		fx.jobs = append(fx.jobs, backfillJob(run.p.name, run.backfill))
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
