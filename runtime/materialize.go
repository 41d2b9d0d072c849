package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/flowstone-go/flowstone/strategy"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/trace"
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

	// rawConfig is Config already encoded and checked: a backfill's, passed
	// to each of its runs without decoding it again.
	rawConfig []byte
}

// Run identifies a started run, as it was requested.
type Run struct {
	ID        string
	Pipeline  string
	Partition flowstone.Partition
	// Targets are the run's targets (Request.Targets and Select
	// resolved); empty when the run has every asset of the pipeline.
	Targets []string
	// Assets in the run, in topological order.
	Assets []string
	// Config is the run's config as stored (JSON); nil when it has none.
	Config json.RawMessage
	// Existing is set when RunKey named a run that already existed: the
	// request was deduplicated, nothing was started, and the other
	// fields describe the stored run as it was first requested (its
	// partition, targets and config), not this request.
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
	forced     forcedAssets
	configHash string
	backfill   string // the backfill the run belongs to, if any
}

// forcedSet returns the assets a forced run recomputes: its targets, or
// every asset when it has none.
func forcedSet(_ *Pipeline, force bool, targets []string) forcedAssets {
	if !force {
		return forcedAssets{}
	}
	if len(targets) == 0 {
		return forcedAssets{all: true}
	}
	set := make(map[string]bool, len(targets))
	for _, t := range targets {
		set[t] = true
	}
	return forcedAssets{set: set}
}

// forcedAssets are the assets a run recomputes even when they could be
// reused. Every job of a run builds it: a run forcing every asset holds
// no set of them.
type forcedAssets struct {
	all bool
	set map[string]bool
}

// has reports whether the run recomputes asset.
func (f forcedAssets) has(asset string) bool { return f.all || f.set[asset] }

// effects collects what a transaction does beyond SQL: jobs to insert in
// it, events to publish after it commits, and the assets it made terminal,
// whose dependents are checked in a later transaction (see advance).
type effects struct {
	jobs     []river.InsertManyParams
	events   []Event
	terminal []node
	// open is set when the transaction saw the run has work left.
	open bool
	// unfinished is set when the run's end was checked and the run had
	// assets left that were not the transaction's to finish.
	unfinished bool
}

// Materialize validates req, records a run and enqueues the assets that are
// ready, in one transaction: a request that fails validation leaves nothing
// behind. Use Wait to follow the run.
func (e *Engine) Materialize(ctx context.Context, p *Pipeline, req Request) (Run, error) {
	if err := e.writable(); err != nil {
		return Run{}, err
	}
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
	if err := flowstone.ValidateKey("run key", req.RunKey); err != nil {
		return Run{}, err
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
	case req.rawConfig != nil:
		cfgJSON = req.rawConfig
	case req.Config != nil && p.config == nil:
		return Run{}, fmt.Errorf("%w: pipeline %s takes no config, got %T", ErrBadConfig, p.name, req.Config)
	case req.Config != nil:
		if cfgJSON, err = p.config.Encode(req.Config); err != nil {
			return Run{}, err
		}
		if err := e.checkConfigSize(p, cfgJSON); err != nil {
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

	traceparent := ""
	if e.tel != nil {
		var span trace.Span
		if ctx, span, traceparent = e.tel.startRun(ctx, p, run.id, req.Partition); span != nil {
			defer span.End()
		}
	}

	var fx effects
	var existing store.KeyedRun
	err = e.be.inTx(ctx, func(tx txn) error {
		fx, existing = effects{}, store.KeyedRun{}
		inserted, err := e.st.InsertRun(ctx, tx, store.NewRun{ID: run.id, Pipeline: p.name, Partition: string(req.Partition),
			Targets: string(targetsJSON), Config: cfgJSON, ConfigHash: run.configHash, Force: req.Force, Total: len(plan.nodes),
			RunKey: req.RunKey, Backfill: backfill})
		if err != nil {
			return err
		}
		if traceparent != "" && inserted {
			if err := e.st.SaveRunTrace(ctx, tx, run.id, traceparent); err != nil {
				return err
			}
		}
		if !inserted && req.RunKey != "" {
			existing, err = e.st.RunByKey(ctx, tx, p.name, req.RunKey)
			return err
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
				fx.jobs = append(fx.jobs, e.deadlineJob(run, n.a, n.key, time.Now().Add(d.Deadline())))
			}
		}
		if err := e.insertRunNodes(ctx, tx, run, plan, deps, required); err != nil {
			return err
		}
		for _, n := range plan.nodes {
			if deps[nodeID(n.a.Key, n.key)] == 0 {
				if forcedRoot(run, n, deps) {
					// Inserted queued: what resolve would claim.
					fx.jobs = append(fx.jobs, e.attemptJob(run, n.a, n.key))
					continue
				}
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
	if existing.ID != "" {
		return storedRun(p, existing), nil
	}
	keys := make([]string, len(assets))
	for i, a := range assets {
		keys[i] = a.Key
	}
	// Roots that were reused: their dependents, and maybe the whole run.
	if err := e.advance(ctx, run, fx.terminal); err != nil {
		return Run{}, fmt.Errorf("materialize %s: %w", p.name, err)
	}
	e.events.publish(append([]Event{{Kind: EventRunStarted, Pipeline: p.name, RunID: run.id, Partition: req.Partition, Status: string(RunRunning)}}, fx.events...)...)
	e.log.InfoContext(ctx, "run started", "run", run.id, "pipeline", p.name, "partition", req.Partition, "assets", len(assets))
	return Run{ID: run.id, Pipeline: p.name, Partition: req.Partition, Targets: targets, Assets: keys, Config: cfgJSON}, nil
}

// storedRun describes the run a run key started, as it was requested.
func storedRun(p *Pipeline, r store.KeyedRun) Run {
	var targets []string
	_ = json.Unmarshal([]byte(r.Targets), &targets)
	var keys []string
	if assets, err := p.Closure(targets); err == nil { // a target since removed from the pipeline leaves Assets empty
		for _, a := range assets {
			keys = append(keys, a.Key)
		}
	}
	return Run{ID: r.ID, Pipeline: p.name, Partition: flowstone.Partition(r.Partition), Targets: targets, Assets: keys,
		Config: r.Config, Existing: true}
}

// plan maps the request's key over the closure and checks every key,
// dynamic set membership included.
func (e *Engine) plan(ctx context.Context, p *Pipeline, closure []*AssetDef, targets []string, key flowstone.Partition) (*runPlan, error) {
	if err := flowstone.ValidateKey("partition key", string(key)); err != nil {
		return nil, fmt.Errorf("%w: %w", flowstone.ErrInvalidPartition, err)
	}
	plan, err := planRun(p, closure, targets, key)
	if err != nil {
		return nil, err
	}
	for _, n := range plan.nodes {
		if err := e.checkDynamic(ctx, p, []*AssetDef{n.a}, n.key); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func (e *Engine) insertRunNodes(ctx context.Context, tx txn, run *runCtx, plan *runPlan, deps, required map[string]int) error {
	nodes := make([]store.NodeDeps, len(plan.nodes))
	for i, n := range plan.nodes {
		id := nodeID(n.a.Key, n.key)
		nodes[i] = store.NodeDeps{Asset: n.a.Key, Partition: string(n.key), Deps: deps[id], Required: required[id], Queued: forcedRoot(run, n, deps)}
	}
	if err := e.st.InsertRunAssets(ctx, tx, run.id, nodes); err != nil {
		return err
	}
	edges := make([]store.Edge, len(plan.edges))
	for i, ed := range plan.edges {
		edges[i] = store.Edge{Asset: ed.down.a.Key, Partition: string(ed.down.key), Upstream: ed.up.a.Key,
			UpstreamPartition: string(ed.up.key), Required: ed.required}
	}
	return e.st.InsertRunEdges(ctx, tx, run.id, edges)
}

// forcedRoot reports whether n is a node with no dependencies that run
// recomputes: nothing can block it and nothing is reused for it, so it is
// inserted queued and its job enqueued, without a claim of its own (one
// statement per node fewer for a wide forced run).
func forcedRoot(run *runCtx, n node, deps map[string]int) bool {
	return deps[nodeID(n.a.Key, n.key)] == 0 && run.forced.has(n.a.Key)
}

// upstream is one dependency's state within a run.
type upstream struct {
	asset, partition string
	status           AssetStatus
	mat, err         string
}

// loadUpstreams returns the upstream nodes of a at key in the run, with
// their state, ordered by asset and partition.
func (e *Engine) loadUpstreams(ctx context.Context, q querier, run *runCtx, a *AssetDef, key flowstone.Partition) ([]upstream, error) {
	rows, err := e.st.Upstreams(ctx, q, store.Node{Run: run.id, Asset: a.Key, Partition: string(key)})
	if err != nil {
		return nil, err
	}
	out := make([]upstream, len(rows))
	for i, u := range rows {
		out[i] = upstream{asset: u.Asset, partition: u.Partition, status: AssetStatus(u.Status), mat: u.Materialization, err: u.Error}
	}
	return out, nil
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
	n := store.Node{Run: run.id, Asset: a.Key, Partition: string(part)}
	claim := func(status AssetStatus, mat string, msg string) (bool, error) {
		return e.st.ClaimAsset(ctx, tx, n, store.AssetStatus(status), mat, msg)
	}
	if blocked != "" {
		ok, err := claim(AssetStatus(blocked), "", reason)
		if !ok || err != nil {
			return false, err
		}
		return true, e.markTerminal(ctx, tx, run, a, part, AssetStatus(blocked), reason, fx)
	}
	if !run.forced.has(a.Key) {
		ups, err := e.loadUpstreams(ctx, tx, run, a, part)
		if err != nil {
			return false, err
		}
		cfgHash := ""
		if a.UsesConfig {
			cfgHash = run.configHash
		}
		mat, found, err := e.st.Reusable(ctx, tx, store.ReuseKey{Pipeline: run.p.name, Asset: a.Key, Partition: string(part),
			CodeVersion: a.CodeVersion, ConfigHash: cfgHash, InputHash: inputHash(ups), Lock: e.dialect == "postgres"})
		if err != nil {
			return false, fmt.Errorf("reuse check %s: %w", a.Key, err)
		}
		if found {
			ok, err := claim(StatusReused, mat, "")
			if !ok || err != nil {
				return false, err
			}
			return true, e.markTerminal(ctx, tx, run, a, part, StatusReused, "", fx)
		}
	}
	ok, err := claim(StatusQueued, "", "")
	if !ok || err != nil {
		return false, err
	}
	fx.jobs = append(fx.jobs, e.attemptJob(run, a, part))
	return true, nil
}

// markTerminal records, for each dependent of a in the run, that a has
// arrived: with what it does to the dependent (block) and whether the
// dependent requires it. The caller has set a's status in the same
// transaction. Dependents are checked for readiness by advance, after this
// transaction commits.
func (e *Engine) markTerminal(ctx context.Context, tx txn, run *runCtx, a *AssetDef, part flowstone.Partition, status AssetStatus, errMsg string, fx *effects) error {
	fx.events = append(fx.events, finishedEvent(run, a, part, status, errMsg))
	fx.terminal = append(fx.terminal, node{a, part})
	return e.st.InsertArrivals(ctx, tx, store.Node{Run: run.id, Asset: a.Key, Partition: string(part)}, blockOf(status))
}

// finishedEvent is the event of a's node becoming terminal with status.
func finishedEvent(run *runCtx, a *AssetDef, part flowstone.Partition, status AssetStatus, errMsg string) Event {
	return Event{Kind: EventAssetFinished, Pipeline: run.p.name, RunID: run.id, Asset: a.Key, Partition: part, Status: string(status), Error: errMsg}
}

// blockOf is what an upstream's terminal status does to the dependents
// that require it.
func blockOf(status AssetStatus) store.Block {
	switch {
	case status.failedish() || status == StatusCancelled:
		return store.BlockUpstreamFailed
	case status == StatusSkipped:
		return store.BlockSkipped
	}
	return store.BlockNone
}

// runNodes are nodes of one run that became terminal.
type runNodes struct {
	run   *runCtx
	nodes []node
}

// advance moves a run on after transactions that made assets terminal
// have committed (see advanceRuns).
func (e *Engine) advance(ctx context.Context, run *runCtx, terminal []node) error {
	return e.advanceRuns(ctx, []runNodes{{run: run, nodes: terminal}})
}

// advanceRuns moves runs on after transactions that made their assets
// terminal have committed: each dependent whose dependencies have all
// arrived (or, past its deadline, its required ones) is resolved, and a run
// with nothing left to do is finished. Assets that resolving makes terminal
// (reused, blocked) are advanced in turn, each round in a transaction that
// starts after the previous committed. That ordering is what makes a
// fan-in start exactly once: of the upstreams that finish together, the
// last to commit sees every arrival, and the claim in resolve lets only one
// act. (The recorder advances in the transaction that records the
// arrivals instead; on PostgreSQL the readiness checks of a dependent are
// then made serial by a lock on its row, taken here too: see commitGroup.) Each round is one transaction for every run, with one statement for
// the dependents of all its nodes, and a dependent that several of them
// share checked once.
//
// The jobs that advance are completed by River once they return, not in
// these transactions: a job whose process dies before that is delivered
// again, finds its node terminal, and advances again, which changes
// nothing that was already done.
func (e *Engine) advanceRuns(ctx context.Context, runs []runNodes) error {
	runs = mergeRuns(runs)
	for first := true; first || len(runs) > 0; first = false {
		var fxs []effects
		err := e.be.inTx(ctx, func(tx txn) (err error) {
			fxs, err = e.advanceRound(ctx, tx, runs)
			return err
		})
		if err != nil {
			return err
		}
		for i := range fxs {
			e.events.publish(fxs[i].events...)
		}
		runs = nextRound(runs, fxs)
	}
	return nil
}

// advanceRound is one round of advanceRuns in tx: it checks the
// dependents of runs' nodes, finishes the runs with nothing left to do,
// inserts the jobs of the dependents it enqueued, and returns each run's
// effects.
func (e *Engine) advanceRound(ctx context.Context, tx txn, runs []runNodes) ([]effects, error) {
	deps, err := e.dependentsOf(ctx, tx, runs)
	if err != nil {
		return nil, err
	}
	return e.advanceWith(ctx, tx, runs, deps)
}

// dependentsOf returns the dependents of runs' nodes (store.Dependents:
// locked on PostgreSQL).
func (e *Engine) dependentsOf(ctx context.Context, tx txn, runs []runNodes) ([]store.Dependent, error) {
	var ups []store.Node
	for _, r := range runs {
		for _, n := range r.nodes {
			ups = append(ups, store.Node{Run: r.run.id, Asset: n.a.Key, Partition: string(n.key)})
		}
	}
	return e.st.Dependents(ctx, tx, e.dialect == "postgres", ups)
}

// advanceWith is advanceRound with the dependents of runs' nodes read
// already (dependentsOf, or with the nodes' record).
func (e *Engine) advanceWith(ctx context.Context, tx txn, runs []runNodes, deps []store.Dependent) ([]effects, error) {
	fxs := make([]effects, len(runs))
	byUp := make(map[store.Node][]store.Node, len(deps))
	for _, d := range deps {
		byUp[d.Upstream] = append(byUp[d.Upstream], d.Node)
	}
	var jobs []river.InsertManyParams
	for i, r := range runs {
		fx := &fxs[i]
		seen := map[string]bool{}
		for _, n := range r.nodes {
			for _, d := range byUp[store.Node{Run: r.run.id, Asset: n.a.Key, Partition: string(n.key)}] {
				def := r.run.p.Asset(d.Asset)
				id := nodeID(d.Asset, flowstone.Partition(d.Partition))
				if def == nil || seen[id] {
					continue
				}
				seen[id] = true
				if err := e.checkReady(ctx, tx, r.run, def, flowstone.Partition(d.Partition), fx); err != nil {
					return nil, err
				}
			}
		}
		if !fx.open && len(fx.jobs) == 0 {
			if err := e.checkRunDone(ctx, tx, r.run, fx); err != nil {
				return nil, err
			}
		}
		jobs = append(jobs, fx.jobs...)
	}
	return fxs, tx.insertJobs(ctx, jobs)
}

// nextRound returns the runs whose round, with effects fxs, made nodes
// terminal (reused, blocked), with those nodes.
func nextRound(runs []runNodes, fxs []effects) []runNodes {
	var next []runNodes
	for i, r := range runs {
		if len(fxs[i].terminal) > 0 {
			next = append(next, runNodes{run: r.run, nodes: fxs[i].terminal})
		}
	}
	return next
}

// mergeRuns joins the entries of the same run, in the order they first
// appear.
func mergeRuns(runs []runNodes) []runNodes {
	if len(runs) < 2 {
		return runs
	}
	at := make(map[string]int, len(runs))
	out := make([]runNodes, 0, len(runs))
	for _, r := range runs {
		if i, ok := at[r.run.id]; ok {
			out[i].nodes = append(out[i].nodes, r.nodes...)
			continue
		}
		at[r.run.id] = len(out)
		out = append(out, runNodes{run: r.run, nodes: append([]node(nil), r.nodes...)})
	}
	return out
}

// checkReady resolves d at key if it is pending and its dependencies allow
// it.
func (e *Engine) checkReady(ctx context.Context, tx txn, run *runCtx, d *AssetDef, key flowstone.Partition, fx *effects) error {
	n := store.Node{Run: run.id, Asset: d.Key, Partition: string(key)}
	r, found, err := e.st.Readiness(ctx, tx, n)
	if err != nil || !found || r.Status != store.AssetPending {
		return err // not in this run, or already resolved
	}
	if r.Arrived < r.Deps && (!r.Early || r.ArrivedRequired < r.Required) {
		fx.open = true // the run has work left
		return nil
	}
	blocked, reason := "", ""
	if r.Blocked {
		up, block, upStatus, err := e.st.Blocker(ctx, tx, n)
		if err != nil {
			return err
		}
		name := up.Asset
		if up.Partition != n.Partition && up.Partition != "" {
			name += " (" + up.Partition + ")"
		}
		blocked, reason = string(block), "upstream "+name+" "+string(upStatus)
	}
	_, err = e.resolve(ctx, tx, run, d, key, blocked, reason, fx)
	return err
}

// checkRunDone finishes the run once none of its assets is left to do.
func (e *Engine) checkRunDone(ctx context.Context, tx txn, run *runCtx, fx *effects) error {
	open, err := e.st.RunOpen(ctx, tx, run.id)
	if err != nil || open {
		fx.unfinished = open
		return err
	}
	failed, err := e.st.RunFailures(ctx, tx, run.id)
	if err != nil {
		return err
	}
	final := RunSucceeded
	if failed > 0 {
		final = RunFailed
	}
	finished, err := e.st.FinishRun(ctx, tx, run.id, store.RunStatus(final))
	if err != nil || !finished {
		return err
	}
	fx.events = append(fx.events, Event{Kind: EventRunFinished, Pipeline: run.p.name, RunID: run.id, Partition: run.partition, Status: string(final)})
	if run.backfill != "" {
		// The backfill launches its next partitions in a job of its own.
		fx.jobs = append(fx.jobs, backfillJob(run.p.name, run.backfill))
	}
	return nil
}
