package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Declarative automation policies (AssetDef.Auto, auto= in the directive).
const (
	// AutoEager materializes an asset's affected partitions when an
	// upstream has a successful materialization newer than the asset's
	// newest materialization of them.
	AutoEager = "eager"
	// AutoMissing materializes the partitions (up to the set's newest
	// complete one) that have never been materialized.
	AutoMissing = "missing"
)

// AutomationOutcome is what an automation evaluation decided for one asset
// and partition.
type AutomationOutcome string

// Automation outcomes.
const (
	// AutomationLaunched started a run (AutomationDecision.RunID); a run
	// key already used names the run it started before.
	AutomationLaunched AutomationOutcome = "launched"
	// AutomationRunning waits: a run already has the asset and partition
	// pending, queued or running. The candidate is kept and evaluated
	// again once that run has finished the asset: launched unless what it
	// materialized read the upstream materializations that triggered it.
	AutomationRunning AutomationOutcome = "skipped: already running"
	// AutomationNothingNew skipped: the asset's newest materialization of
	// the partition read the upstream materializations that triggered it
	// (or newer ones), or started after they finished.
	AutomationNothingNew AutomationOutcome = "skipped: nothing new"
	// AutomationDeferred is backpressure: Config.MaxAutomatedRuns
	// automated runs of the pipeline are in flight; the next evaluation
	// tries again.
	AutomationDeferred AutomationOutcome = "deferred: backpressure"
	// AutomationWaiting defers a partition whose window has not ended yet
	// (see flowstone.EndOffset); the next evaluations try again.
	AutomationWaiting AutomationOutcome = "deferred: window not ended"
	// AutomationRefused is a run Materialize refused (the reason says
	// why); it is not tried again.
	AutomationRefused AutomationOutcome = "refused"
)

// automationSettle is how long after it finished a materialization is
// read by an evaluation: a materialization is recorded in a transaction
// that commits after its finish time, and processes' clocks differ a
// little. The cursor never passes now minus this.
const automationSettle = 3 * time.Second

// automationBatch caps the materializations one evaluation reads per
// pipeline; the rest wait for the next evaluation.
const automationBatch = 5000

// missingScan caps the partitions auto=missing looks at per asset and
// evaluation.
const missingScan = 500

// AutomationDecision is one recorded decision of an automation evaluation.
type AutomationDecision struct {
	Pipeline  string
	Asset     string
	Partition flowstone.Partition
	Decision  AutomationOutcome
	// RunID is the run launched (AutomationLaunched), or the run the
	// candidate waits for (AutomationRunning: the oldest running run that
	// has the asset and partition), else empty.
	RunID string
	// Reason names what triggered the decision: the upstream
	// materializations, or the missing partition.
	Reason      string
	EvaluatedAt time.Time
}

// DecisionFilter narrows Engine.AutomationDecisions; zero fields match
// every decision.
type DecisionFilter struct {
	Pipeline string
	Asset    string
	// Limit caps the listing; zero means 50.
	Limit int
}

// AutomationDecisions returns the newest recorded automation decisions
// that match f, newest first.
func (e *Engine) AutomationDecisions(ctx context.Context, f DecisionFilter) ([]AutomationDecision, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	rows, err := e.st.AutomationDecisions(ctx, e.be.pool(), store.DecisionFilter{Pipeline: f.Pipeline, Asset: f.Asset, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]AutomationDecision, len(rows))
	for i, d := range rows {
		out[i] = AutomationDecision{Pipeline: d.Pipeline, Asset: d.Asset, Partition: flowstone.Partition(d.Partition),
			Decision: AutomationOutcome(d.Decision), RunID: d.Run, Reason: d.Reason, EvaluatedAt: time.UnixMicro(d.EvaluatedAt)}
	}
	return out, nil
}

// automated reports whether p has assets the automation loop evaluates:
// auto= or fresh= ones.
func automated(p *Pipeline) bool {
	for _, a := range p.assets {
		if a.Auto != "" || a.Fresh > 0 {
			return true
		}
	}
	return false
}

// automationArgs are the args of the automation evaluation job; its kind
// holds a ':', which pipeline names cannot.
type automationArgs struct{}

func (automationArgs) Kind() string { return "flowstone:automation" }

// automationWorker evaluates the automation of every bound pipeline.
type automationWorker struct {
	river.WorkerDefaults[automationArgs]
	e *Engine
}

func (w *automationWorker) Work(ctx context.Context, _ *river.Job[automationArgs]) error {
	return w.e.evaluateAutomation(ctx, time.Now())
}

// automationEnabled reports whether this process schedules and works the
// automation evaluation.
func (e *Engine) automationEnabled() bool {
	if e.cfg.AutomationInterval < 0 {
		return false
	}
	for _, b := range e.bindings {
		if automated(b.pipeline) {
			return true
		}
	}
	return false
}

// automationJob is the periodic automation evaluation: River's leader
// inserts it, and one still queued or running makes the next tick a no-op,
// so one process evaluates at a time; one attempt (the next tick carries
// on).
func (e *Engine) automationJob() *river.PeriodicJob {
	every := e.cfg.AutomationInterval
	if every == 0 {
		every = 30 * time.Second
	}
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		return automationArgs{}, &river.InsertOpts{MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}}}
	}, &river.PeriodicJobOpts{ID: "flowstone:automation", RunOnStart: true})
}

// evaluateAutomation evaluates every bound pipeline with automated or
// bounded assets at now.
func (e *Engine) evaluateAutomation(ctx context.Context, now time.Time) error {
	var errs []error
	for _, p := range e.Pipelines() {
		if !automated(p) {
			continue
		}
		if err := e.evaluatePipeline(ctx, p, now); err != nil {
			e.log.ErrorContext(ctx, "automation evaluation failed", "pipeline", p.name, "error", err)
			errs = append(errs, fmt.Errorf("automation of %s: %w", p.name, err))
		}
	}
	return errors.Join(errs...)
}

// candidate is an asset and partition an evaluation considers launching.
type candidate struct {
	asset *AssetDef
	part  flowstone.Partition
	// trigger is the newest upstream materialization that triggered it
	// (empty for a missing partition); triggerAt when it finished.
	trigger   string
	triggerAt int64
	ups       map[string]*upstreamNews // by upstream asset
	// news is the newest triggering materialization of each upstream
	// partition, by newsKey: what "nothing new" checks the asset's newest
	// materialization read.
	news    map[string]store.NewSuccess
	reason  string
	pending bool // read from the pending table
	// stale is set when only its own previous partition triggered it: it
	// is launched only if it was materialized before (a partition never
	// materialized is auto=missing's).
	stale bool
}

func (c *candidate) describe() string {
	if c.reason != "" {
		return c.reason
	}
	names := make([]string, 0, len(c.ups))
	for u := range c.ups {
		names = append(names, u)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, u := range names {
		up := c.ups[u]
		if up.n == 1 {
			parts[i] = fmt.Sprintf("%s%s materialized (%s)", u, keyNote(up.newest.Partition), up.newest.ID)
		} else {
			parts[i] = fmt.Sprintf("%s: %d new materializations, the newest %s%s (%s)", u, up.n, u, keyNote(up.newest.Partition), up.newest.ID)
		}
	}
	c.reason = strings.Join(parts, "; ")
	return c.reason
}

// newsKey names an upstream partition in candidate.news.
func newsKey(asset, partition string) string { return asset + "\x00" + partition }

// addNews records m as news of c, keeping the newest per upstream
// partition.
func (c *candidate) addNews(m store.NewSuccess) {
	if c.news == nil {
		c.news = map[string]store.NewSuccess{}
	}
	k := newsKey(m.Asset, m.Partition)
	if old, ok := c.news[k]; !ok || m.FinishedAt > old.FinishedAt || m.FinishedAt == old.FinishedAt && m.ID > old.ID {
		c.news[k] = m
	}
}

// pendingNews is one upstream partition's triggering materialization as
// the pending table keeps it (JSON).
type pendingNews struct {
	Asset     string `json:"asset"`
	Partition string `json:"partition"`
	ID        string `json:"id"`
	At        int64  `json:"at"`
}

// encodeNews encodes c.news for the pending table, in key order.
func (c *candidate) encodeNews() string {
	if len(c.news) == 0 {
		return ""
	}
	list := make([]pendingNews, 0, len(c.news))
	for _, k := range sortedKeys(c.news) {
		m := c.news[k]
		list = append(list, pendingNews{Asset: m.Asset, Partition: m.Partition, ID: m.ID, At: m.FinishedAt})
	}
	b, _ := json.Marshal(list) // strings and integers only
	return string(b)
}

// decodeNews adds the news encoded by encodeNews to c; a row from before
// news were kept has none.
func (c *candidate) decodeNews(s string) {
	var list []pendingNews
	if s == "" || json.Unmarshal([]byte(s), &list) != nil {
		return
	}
	for _, n := range list {
		c.addNews(store.NewSuccess{Asset: n.Asset, Partition: n.Partition, ID: n.ID, FinishedAt: n.At})
	}
}

// keyNote spells a partition key after an asset name.
func keyNote(k string) string {
	if k == "" {
		return ""
	}
	return " " + k
}

// upstreamNews is what an evaluation read of one upstream of a candidate.
type upstreamNews struct {
	n      int
	newest store.NewSuccess
}

// evaluation is one evaluation of one pipeline.
type evaluation struct {
	e         *Engine
	p         *Pipeline
	now       time.Time
	q         querier
	decisions []store.AutomationDecision
	budget    int
}

func (ev *evaluation) decide(c *candidate, outcome AutomationOutcome, run, reason string) {
	ev.decisions = append(ev.decisions, store.AutomationDecision{ID: newID("dec_"), Pipeline: ev.p.name, Asset: c.asset.Key,
		Partition: string(c.part), Decision: string(outcome), Run: run, Reason: reason, EvaluatedAt: ev.now.UnixMicro()})
}

// evaluatePipeline reads the successful materializations that finished
// since the pipeline's cursor, maps them to the affected partitions of
// their auto=eager dependents, adds the pending candidates and the missing
// partitions of auto=missing assets, decides on each, records the
// decisions and moves the cursor; then it judges freshness.
func (e *Engine) evaluatePipeline(ctx context.Context, p *Pipeline, now time.Time) error {
	ev := &evaluation{e: e, p: p, now: now, q: e.be.pool()}
	q := ev.q
	upto := now.Add(-automationSettle).UnixMicro()
	cursor, found, err := e.st.AutomationCursor(ctx, q, p.name)
	if err != nil {
		return err
	}
	if !found {
		// The first evaluation starts now: history from before automation
		// was turned on triggers nothing (auto=missing fills what is
		// missing).
		cursor = upto
	}
	var mats []store.NewSuccess
	if cursor < upto {
		if mats, err = e.st.NewSuccesses(ctx, q, p.name, cursor, upto, automationBatch); err != nil {
			return err
		}
	}
	next := max(cursor, upto)
	if len(mats) == automationBatch {
		// A full batch: stop before its last instant, whose rest may be
		// in the next batch.
		last := mats[len(mats)-1].FinishedAt
		for len(mats) > 0 && mats[len(mats)-1].FinishedAt == last {
			mats = mats[:len(mats)-1]
		}
		next = last - 1
		if len(mats) == 0 {
			next = last // a whole batch in one microsecond: move on
		}
	}

	cands, order := map[string]*candidate{}, []string{}
	add := func(a *AssetDef, part flowstone.Partition) (*candidate, bool) {
		id := nodeID(a.Key, part)
		if c, ok := cands[id]; ok {
			return c, false
		}
		c := &candidate{asset: a, part: part, ups: map[string]*upstreamNews{}}
		cands[id] = c
		order = append(order, id)
		return c, true
	}
	pend, err := e.st.AutomationPendings(ctx, q, p.name)
	if err != nil {
		return err
	}
	for _, pd := range pend {
		a := p.byKey[pd.Asset]
		if a == nil || a.Auto == "" {
			if err := e.st.DeleteAutomationPending(ctx, q, p.name, pd.Asset, pd.Partition); err != nil {
				return err
			}
			continue
		}
		c, _ := add(a, flowstone.Partition(pd.Partition))
		c.reason, c.trigger, c.triggerAt, c.pending = pd.Reason, pd.Trigger, pd.TriggerAt, true
		c.decodeNews(pd.News)
	}
	// The eager dependents of each asset, with the dependency.
	type edge struct {
		down *AssetDef
		dep  Dep
	}
	downs := map[string][]edge{}
	for _, a := range p.assets {
		if a.Auto != AutoEager {
			continue
		}
		for _, d := range a.Deps {
			downs[d.Asset] = append(downs[d.Asset], edge{a, d})
		}
	}
	for _, m := range mats {
		up := p.byKey[m.Asset]
		if up == nil {
			continue
		}
		for _, ed := range downs[m.Asset] {
			for _, part := range affected(ed.down, ed.dep, up, flowstone.Partition(m.Partition), now) {
				c, fresh := add(ed.down, part)
				if fresh {
					c.stale = ed.dep.Kind == DepPrevious
				} else if ed.dep.Kind != DepPrevious {
					c.stale = false
				}
				if len(c.ups) == 0 {
					c.reason = "" // described by its new materializations
				}
				news := c.ups[m.Asset]
				if news == nil {
					news = &upstreamNews{}
					c.ups[m.Asset] = news
				}
				news.n++
				if m.FinishedAt >= news.newest.FinishedAt {
					news.newest = m
				}
				c.addNews(m)
				if m.FinishedAt >= c.triggerAt {
					c.trigger, c.triggerAt = m.ID, m.FinishedAt
				}
			}
		}
	}

	active, err := e.st.ActiveNodes(ctx, q, p.name)
	if err != nil {
		return err
	}
	busy := map[string]string{} // node -> the run that has it
	for _, n := range active {
		busy[nodeID(n.Asset, flowstone.Partition(n.Partition))] = n.Run
	}
	running, err := e.st.RunningWithKeyPrefix(ctx, q, p.name, StartedByAutomation+":")
	if err != nil {
		return err
	}
	ev.budget = e.maxAutomatedRuns() - running

	// Newest materialization of each candidate, with what it read of the
	// candidate's news, per asset.
	newest := map[string]*newestMat{}
	byAsset := map[string][]store.ReadCheck{}
	for _, id := range order {
		c := cands[id]
		if len(c.news) == 0 {
			byAsset[c.asset.Key] = append(byAsset[c.asset.Key], store.ReadCheck{Partition: string(c.part)})
		}
		for _, m := range c.news {
			byAsset[c.asset.Key] = append(byAsset[c.asset.Key], store.ReadCheck{Partition: string(c.part), Upstream: m.Asset, UpstreamPartition: m.Partition})
		}
	}
	for asset, checks := range byAsset {
		got, err := e.st.NewestReads(ctx, q, p.name, asset, checks)
		if err != nil {
			return err
		}
		for _, r := range got {
			id := nodeID(asset, flowstone.Partition(r.Partition))
			nw := newest[id]
			if nw == nil {
				nw = &newestMat{id: r.Materialization, startedAt: r.StartedAt, finishedAt: r.FinishedAt, reads: map[string]store.NewestRead{}}
				newest[id] = nw
			}
			if r.Upstream != "" {
				nw.reads[newsKey(r.Upstream, r.UpstreamPartition)] = r
			}
		}
	}
	topo := map[string]int{}
	for i, a := range p.assets {
		topo[a.Key] = i
	}
	sort.SliceStable(order, func(i, j int) bool {
		ci, cj := cands[order[i]], cands[order[j]]
		if pi, pj := topo[ci.asset.Key], topo[cj.asset.Key]; pi != pj {
			return pi < pj
		}
		return ci.part < cj.part
	})
	for _, id := range order {
		c := cands[id]
		if err := ev.consider(ctx, c, newest, busy); err != nil {
			return err
		}
	}
	if err := ev.missing(ctx, busy); err != nil {
		return err
	}
	err = e.be.inTx(ctx, func(tx txn) error {
		if err := e.st.InsertAutomationDecisions(ctx, tx, ev.decisions); err != nil {
			return err
		}
		return e.st.SaveAutomationCursor(ctx, tx, p.name, next)
	})
	if err != nil {
		return err
	}
	return e.judgeFreshness(ctx, p, now)
}

// newestMat is a candidate's newest materialization (of any status) and
// what it read of the candidate's news, by newsKey.
type newestMat struct {
	id                    string
	startedAt, finishedAt int64
	reads                 map[string]store.NewestRead
}

// covered reports whether nw already follows from c's news: for each
// upstream partition, it read the triggering materialization or a newer
// one, or (reading none of that partition: a failure, an ordering-only
// dependency) it started after the triggering one finished. A candidate
// without news (a missing partition, or kept pending before news were
// kept) is covered by a materialization that finished after its trigger.
func (c *candidate) covered(nw *newestMat) bool {
	if len(c.news) == 0 {
		return nw.finishedAt >= c.triggerAt
	}
	for k, m := range c.news {
		if r, ok := nw.reads[k]; ok && r.Read {
			if r.ReadAt < m.FinishedAt {
				return false
			}
			continue
		}
		if nw.startedAt < m.FinishedAt {
			return false
		}
	}
	return true
}

// consider decides on one candidate: nothing new, already running, its
// window not ended, backpressure, or a run.
func (ev *evaluation) consider(ctx context.Context, c *candidate, newest map[string]*newestMat, busy map[string]string) error {
	e, q, p := ev.e, ev.q, ev.p
	id := nodeID(c.asset.Key, c.part)
	drop := func() error {
		if !c.pending {
			return nil
		}
		return e.st.DeleteAutomationPending(ctx, q, p.name, c.asset.Key, string(c.part))
	}
	keep := func(outcome AutomationOutcome, run string) error {
		reason := c.describe()
		if !c.pending || len(c.ups) > 0 {
			// Recorded when it starts waiting (or has news), not at every
			// evaluation it goes on waiting.
			ev.decide(c, outcome, run, reason)
		}
		return e.st.SetAutomationPending(ctx, q, p.name, store.AutomationPending{Asset: c.asset.Key, Partition: string(c.part),
			Reason: reason, Trigger: c.trigger, TriggerAt: c.triggerAt, News: c.encodeNews()})
	}
	if c.asset.Partitions != nil {
		if err := c.asset.Partitions.Validate(c.part); err != nil {
			if errors.Is(err, flowstone.ErrFuturePartition) {
				return keep(AutomationWaiting, "")
			}
			ev.decide(c, AutomationRefused, "", c.describe()+": "+err.Error())
			return drop()
		}
	}
	nw, ok := newest[id]
	if c.stale && !ok {
		return drop() // the next partition of a chain not materialized yet
	}
	if ok && c.covered(nw) {
		ev.decide(c, AutomationNothingNew, "", fmt.Sprintf("%s; %s%s materialized from them or newer (%s, %s)", c.describe(), c.asset.Key,
			keyNote(string(c.part)), nw.id, time.UnixMicro(nw.finishedAt).UTC().Format(time.DateTime)))
		return drop()
	}
	if run := busy[id]; run != "" {
		// The run that has it may have read older upstreams: evaluated
		// again once it has finished the asset. The decision names it.
		return keep(AutomationRunning, run)
	}
	if ev.budget <= 0 {
		return keep(AutomationDeferred, "")
	}
	key := c.trigger
	if key == "" {
		key = "missing"
	}
	run, err := e.Materialize(ctx, p, Request{Targets: []string{c.asset.Key}, Partition: c.part, Config: c.asset.ScheduleConfig,
		Force: true, RunKey: StartedByAutomation + ":" + c.asset.Key + ":" + string(c.part) + ":" + key})
	if err != nil {
		e.log.ErrorContext(ctx, "automated run refused", "pipeline", p.name, "asset", c.asset.Key, "partition", c.part, "error", err)
		ev.decide(c, AutomationRefused, "", c.describe()+": "+err.Error())
		return drop()
	}
	if !run.Existing {
		ev.budget--
	}
	busy[id] = run.ID
	e.log.InfoContext(ctx, "automated run", "pipeline", p.name, "asset", c.asset.Key, "partition", c.part, "run", run.ID, "existing", run.Existing)
	ev.decide(c, AutomationLaunched, run.ID, c.describe())
	return drop()
}

// missing launches, within the budget left, the partitions of auto=missing
// assets never materialized, from where the previous evaluation stopped.
func (ev *evaluation) missing(ctx context.Context, busy map[string]string) error {
	e, q, p := ev.e, ev.q, ev.p
	var state map[string]store.AutomationAsset
	for _, a := range p.assets {
		if a.Auto != AutoMissing || ev.budget <= 0 {
			continue
		}
		if state == nil {
			var err error
			if state, err = e.st.AutomationAssets(ctx, q, p.name); err != nil {
				return err
			}
		}
		st := state[a.Key]
		keys, ok := missingKeys(a, st, ev.now)
		if !ok || len(keys) == 0 {
			continue
		}
		strs := make([]string, len(keys))
		for i, k := range keys {
			strs[i] = string(k)
		}
		have, err := e.st.NewestFinished(ctx, q, p.name, a.Key, strs)
		if err != nil {
			return err
		}
		done := ""
		for _, k := range keys {
			if _, ok := have[string(k)]; !ok && busy[nodeID(a.Key, k)] == "" {
				if ev.budget <= 0 {
					break
				}
				c := &candidate{asset: a, part: k, reason: "never materialized"}
				if err := ev.consider(ctx, c, nil, busy); err != nil {
					return err
				}
			}
			done = string(k)
			if k == "" {
				done = "-"
			}
		}
		if done != "" {
			if err := e.st.SetMissingDone(ctx, q, p.name, a.Key, done); err != nil {
				return err
			}
		}
	}
	return nil
}

// missingKeys returns the partitions of a that auto=missing looks at next:
// those after the last one decided on, up to the set's newest complete
// one, at most missingScan; ok is false for a set it cannot enumerate
// (dynamic, multi).
func missingKeys(a *AssetDef, st store.AutomationAsset, now time.Time) ([]flowstone.Partition, bool) {
	switch s := a.Partitions.(type) {
	case nil:
		if st.HasMissing {
			return nil, true
		}
		return []flowstone.Partition{""}, true
	case flowstone.TimeWindowSet:
		last, ok := s.Last(now)
		if !ok {
			return nil, true
		}
		var first flowstone.Partition
		if st.HasMissing {
			n, ok := s.Next(flowstone.Partition(st.MissingDone))
			if !ok || s.Validate(n) != nil {
				return nil, true
			}
			first = n
		} else {
			first = last
			for k, ok := s.Previous(last); ok; k, ok = s.Previous(k) {
				first = k
			}
		}
		var keys []flowstone.Partition
		for k, ok := first, true; ok && len(keys) < missingScan; k, ok = s.Next(k) {
			keys = append(keys, k)
			if k == last {
				break
			}
		}
		return keys, true
	case interface{ Keys() []flowstone.Partition }:
		all := s.Keys()
		from := 0
		if st.HasMissing {
			from = len(all)
			for i, k := range all {
				if string(k) == st.MissingDone {
					from = i + 1
				}
			}
		}
		return all[from:min(len(all), from+missingScan)], true
	}
	return nil, false
}

// affected returns the partitions of down that a new materialization of
// up at key affects through dependency d.
func affected(down *AssetDef, d Dep, up *AssetDef, key flowstone.Partition, now time.Time) []flowstone.Partition {
	if d.Kind == DepPrevious {
		// down reads its own previous partition: the next one follows.
		if ts, ok := down.Partitions.(flowstone.TimeWindowSet); ok {
			if n, ok := ts.Next(key); ok {
				return []flowstone.Partition{n}
			}
		}
		return nil
	}
	switch {
	case down.Partitions == nil:
		return []flowstone.Partition{""}
	case up.Partitions == nil:
		// Every partition reads it: the newest complete one is the one
		// that matters now.
		switch s := down.Partitions.(type) {
		case flowstone.TimeWindowSet:
			if last, ok := s.Last(now); ok {
				return []flowstone.Partition{last}
			}
		case interface{ Keys() []flowstone.Partition }:
			return s.Keys()
		}
		return nil
	}
	if d.Kind == DepPartitions {
		dt, dok := down.Partitions.(flowstone.TimeWindowSet)
		ut, uok := up.Partitions.(flowstone.TimeWindowSet)
		if dok && uok {
			start, _, err := ut.Window(key)
			if err != nil {
				return nil
			}
			return []flowstone.Partition{dt.Key(start)}
		}
		return nil
	}
	return []flowstone.Partition{key}
}

func (e *Engine) maxAutomatedRuns() int {
	if e.cfg.MaxAutomatedRuns > 0 {
		return e.cfg.MaxAutomatedRuns
	}
	return 10
}

// judgeFreshness judges p's bounded assets at now and, for each whose
// state changed since the previous evaluation, records it and publishes
// EventAssetOverdue or EventAssetFresh.
func (e *Engine) judgeFreshness(ctx context.Context, p *Pipeline, now time.Time) error {
	fs, err := e.Freshness(ctx, p, now)
	if err != nil || len(fs) == 0 {
		return err
	}
	q := e.be.pool()
	state, err := e.st.AutomationAssets(ctx, q, p.name)
	if err != nil {
		return err
	}
	var evs []Event
	for _, f := range fs {
		if state[f.Asset].Overdue == f.Overdue {
			continue
		}
		if err := e.st.SetOverdue(ctx, q, p.name, f.Asset, f.Overdue, now.UnixMicro()); err != nil {
			return err
		}
		ev := Event{Kind: EventAssetFresh, Time: now, Pipeline: p.name, Asset: f.Asset, Partition: f.Partition, Status: "fresh"}
		if f.Overdue {
			ev.Kind, ev.Status, ev.Error = EventAssetOverdue, "overdue", f.Reason
			e.log.WarnContext(ctx, "asset overdue", "pipeline", p.name, "asset", f.Asset, "reason", f.Reason)
		} else {
			e.log.InfoContext(ctx, "asset fresh again", "pipeline", p.name, "asset", f.Asset)
		}
		evs = append(evs, ev)
	}
	e.events.publish(evs...)
	return nil
}

// AutomationStatus is a pipeline's automation evaluations so far.
type AutomationStatus struct {
	Pipeline    string
	Evaluations int
	// Cursor is the finish time up to which materializations have been
	// evaluated.
	Cursor      time.Time
	EvaluatedAt time.Time
}

// AutomationStatus returns the automation state of the bound pipelines
// that have automated or bounded assets, evaluated or not, by name.
func (e *Engine) AutomationStatus(ctx context.Context) ([]AutomationStatus, error) {
	states, err := e.st.AutomationStates(ctx, e.be.pool(), "")
	if err != nil {
		return nil, err
	}
	var out []AutomationStatus
	for _, p := range e.Pipelines() {
		if !automated(p) {
			continue
		}
		s := states[p.name]
		out = append(out, AutomationStatus{Pipeline: p.name, Evaluations: s.Evaluations, Cursor: micros(s.Cursor), EvaluatedAt: micros(s.EvaluatedAt)})
	}
	return out, nil
}
