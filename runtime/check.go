package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
	"github.com/riverqueue/river"
)

// EventCheckFinished is published when a check has recorded its result;
// Status is "passed" or "failed", Error the description of a failure.
const EventCheckFinished EventKind = "check_finished"

// CheckFunc is a generated wrapper that loads the checked asset's value
// (Input of the asset's key) and the resources, and calls the
// //flowstone:check function.
type CheckFunc func(ctx context.Context, in *Inputs) (flowstone.CheckResult, error)

// CheckDef is one asset check as the generator describes it.
type CheckDef struct {
	// Name is the function's name in snake_case (or name=); unique per
	// asset.
	Name        string
	Asset       string
	Description string
	// Blocking makes a failed check of severity error fail the
	// materialization for its dependents: they become upstream_failed
	// (the value stays stored) and it is not reused.
	Blocking bool
	// Severity of a failure, unless the result sets its own.
	Severity  flowstone.Severity
	Resources []string
	Run       CheckFunc
}

// CheckRecord is a check's recorded result about one materialization.
type CheckRecord struct {
	Pipeline, Asset, Check string
	Partition              flowstone.Partition
	Materialization        string
	// Run is the run whose materialization started the check; empty for a
	// check run alone.
	Run      string
	Blocking bool
	flowstone.CheckResult
	At time.Time
}

// Blocks reports whether the result fails its materialization for its
// dependents.
func (r CheckRecord) Blocks() bool {
	return r.Blocking && !r.Passed && r.Severity == flowstone.SeverityError
}

func (p *Pipeline) addChecks(defs []CheckDef) error {
	p.checks = map[string][]*CheckDef{}
	for i := range defs {
		c := defs[i]
		c.Resources = append([]string(nil), c.Resources...)
		if c.Severity == "" {
			c.Severity = flowstone.SeverityError
		}
		switch {
		case p.byKey[c.Asset] == nil:
			return fmt.Errorf("check %s of %q, which is not an asset", c.Name, c.Asset)
		case c.Name == "" || p.Check(c.Asset, c.Name) != nil:
			return fmt.Errorf("check %d of %s: empty or duplicate name %q", i, c.Asset, c.Name)
		case c.Run == nil:
			return fmt.Errorf("check %s of %s has no call wrapper", c.Name, c.Asset)
		case c.Severity != flowstone.SeverityError && c.Severity != flowstone.SeverityWarn:
			return fmt.Errorf("check %s of %s: severity %q is neither error nor warn", c.Name, c.Asset, c.Severity)
		}
		p.checks[c.Asset] = append(p.checks[c.Asset], &c)
	}
	return nil
}

// Checks returns the checks of asset, in declaration order.
func (p *Pipeline) Checks(asset string) []*CheckDef {
	return append([]*CheckDef(nil), p.checks[asset]...)
}

// Check returns asset's check named name, or nil.
func (p *Pipeline) Check(asset, name string) *CheckDef {
	for _, c := range p.checks[asset] {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// checkArgs runs one check against one materialization.
type checkArgs struct {
	nodeJob
	Materialization string `json:"materialization"`
	Check           string `json:"check"`
}

// Kind implements river.JobArgs.
func (a checkArgs) Kind() string { return jobKind(a.Pipeline, "check") }

// checkWorker runs a check and records its result; the last blocking
// check of a materialization releases its dependents.
type checkWorker struct {
	river.WorkerDefaults[checkArgs]
	e *Engine
	b Binding
}

func (w *checkWorker) Work(ctx context.Context, job *river.Job[checkArgs]) error {
	return w.e.workCheck(ctx, w.b, job)
}

// materialized replaces markTerminal for a materialization that
// succeeded: it enqueues the asset's checks, each its own job, and holds
// the node in checking while blocking ones run; their last one marks it
// terminal (see releaseChecked).
func (e *Engine) materialized(ctx context.Context, tx txn, run *runCtx, a *AssetDef, part flowstone.Partition, mat string, status AssetStatus, reason string, fx *effects) error {
	checks := run.p.checks[a.Key]
	if status != StatusSucceeded || len(checks) == 0 {
		return e.markTerminal(ctx, tx, run, a, part, status, reason, fx)
	}
	blocking := false
	jobs := make([]river.InsertManyParams, len(checks))
	for i, c := range checks {
		blocking = blocking || c.Blocking
		jobs[i] = river.InsertManyParams{
			Args: checkArgs{nodeJob: nodeJob{Pipeline: run.p.name, Run: run.id, Asset: a.Key, Partition: string(part)},
				Materialization: mat, Check: c.Name},
			InsertOpts: &river.InsertOpts{MaxAttempts: 1 + rescueHeadroom, Queue: a.Queue, Priority: a.Priority},
		}
	}
	if err := tx.insertJobs(ctx, jobs); err != nil {
		return err
	}
	if !blocking {
		return e.markTerminal(ctx, tx, run, a, part, status, reason, fx)
	}
	return e.st.HoldForChecks(ctx, tx, store.Node{Run: run.id, Asset: a.Key, Partition: string(part)})
}

// workCheck runs the job's check, records its result, and, when the check
// is blocking, releases the node if every blocking check has reported.
// Recording and releasing are two transactions, so that of blocking checks
// finishing together the last to commit sees every result.
func (e *Engine) workCheck(ctx context.Context, b Binding, job *river.Job[checkArgs]) error {
	args := job.Args
	p := b.pipeline
	c := p.Check(args.Asset, args.Check)
	if c == nil {
		return river.JobCancel(fmt.Errorf("%w: check %q of %q is not in pipeline %s as bound in this process", ErrUnknownAsset, args.Check, args.Asset, args.Pipeline))
	}
	rec := e.evaluateCheck(ctx, b, c, flowstone.Partition(args.Partition), args.Materialization)
	rec.Run = args.Run
	row, err := checkRow(rec)
	if err != nil {
		return err
	}
	if _, err := e.st.InsertCheckResult(ctx, e.be.pool(), row); err != nil {
		return err
	}
	e.publishCheck(rec)
	if !c.Blocking {
		return e.completeOnly(ctx, job.JobRow)
	}
	run, _, err := e.loadRun(ctx, p, args.nodeJob)
	if err != nil {
		return err
	}
	return e.releaseChecked(ctx, run, p.Asset(args.Asset), args, job)
}

// releaseChecked marks a checking node terminal once all its blocking
// checks have reported: failed when one blocks, succeeded otherwise.
func (e *Engine) releaseChecked(ctx context.Context, run *runCtx, a *AssetDef, args checkArgs, job *river.Job[checkArgs]) error {
	var fx effects
	err := e.be.inTx(ctx, func(tx txn) error {
		fx = effects{}
		rows, err := e.st.CheckResults(ctx, tx, args.Materialization)
		if err != nil {
			return err
		}
		got := map[string]store.CheckResult{}
		for _, r := range rows {
			got[r.Name] = r
		}
		status, msg := StatusSucceeded, ""
		for _, c := range run.p.checks[a.Key] {
			r, ok := got[c.Name]
			switch {
			case !c.Blocking:
			case !ok:
				return tx.completeJob(ctx, job.JobRow) // another blocking check will release it
			case !r.Passed && r.Severity == string(flowstone.SeverityError) && msg == "":
				status, msg = StatusFailed, fmt.Sprintf("blocking check %s failed: %s", c.Name, r.Description)
			}
		}
		n := store.Node{Run: run.id, Asset: a.Key, Partition: args.Partition}
		ok, err := e.st.ReleaseChecked(ctx, tx, n, store.AssetStatus(status), msg)
		if err != nil {
			return err
		}
		if ok {
			if err := e.markTerminal(ctx, tx, run, a, flowstone.Partition(args.Partition), status, msg, &fx); err != nil {
				return err
			}
		}
		return tx.completeJob(ctx, job.JobRow)
	})
	if err != nil {
		return err
	}
	e.events.publish(fx.events...)
	if len(fx.terminal) == 0 {
		return nil
	}
	return e.advance(ctx, run, fx.terminal)
}

// evaluateCheck runs check c against materialization mat; an error or a
// panic is a failed result whose description says so.
func (e *Engine) evaluateCheck(ctx context.Context, b Binding, c *CheckDef, part flowstone.Partition, mat string) CheckRecord {
	in := &Inputs{asset: c.Asset, partition: part, resources: b.resources,
		src: checkSource{e: e, p: b.pipeline, asset: c.Asset, mat: mat}, cache: map[string]any{}}
	res, err := callCheck(ctx, c, in)
	if err != nil {
		res = flowstone.CheckResult{Description: "check did not complete: " + err.Error()}
	}
	if res.Severity == "" {
		res.Severity = c.Severity
	}
	return CheckRecord{Pipeline: b.pipeline.name, Asset: c.Asset, Check: c.Name, Partition: part, Materialization: mat,
		Blocking: c.Blocking, CheckResult: res, At: time.Now()}
}

func callCheck(ctx context.Context, c *CheckDef, in *Inputs) (res flowstone.CheckResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	return c.Run(ctx, in)
}

func (e *Engine) publishCheck(r CheckRecord) {
	status, msg := "passed", ""
	if !r.Passed {
		status, msg = "failed", r.Description
	}
	e.events.publish(Event{Kind: EventCheckFinished, Pipeline: r.Pipeline, RunID: r.Run, Asset: r.Asset + ":" + r.Check,
		Partition: r.Partition, Status: status, Error: msg})
}

func checkRow(r CheckRecord) (store.CheckResult, error) {
	meta := []byte("{}")
	if len(r.Metadata) > 0 {
		var err error
		if meta, err = json.Marshal(r.Metadata); err != nil {
			meta = []byte(fmt.Sprintf(`{"metadata_error":%q}`, err.Error()))
		}
	}
	return store.CheckResult{Materialization: r.Materialization, Name: r.Check, Pipeline: r.Pipeline, Asset: r.Asset,
		Partition: string(r.Partition), Run: r.Run, Blocking: r.Blocking, Passed: r.Passed, Severity: string(r.Severity),
		Description: r.Description, Metadata: string(meta)}, nil
}

// checkRecords converts stored results, passing a query's error through.
func checkRecords(rows []store.CheckResult, err error) ([]CheckRecord, error) {
	if err != nil {
		return nil, err
	}
	out := make([]CheckRecord, len(rows))
	for i, r := range rows {
		out[i] = checkRecord(r)
	}
	return out, nil
}

func checkRecord(r store.CheckResult) CheckRecord {
	var meta map[string]any
	if r.Metadata != "" && r.Metadata != "{}" {
		_ = json.Unmarshal([]byte(r.Metadata), &meta) // written by checkRow
	}
	return CheckRecord{Pipeline: r.Pipeline, Asset: r.Asset, Check: r.Name, Partition: flowstone.Partition(r.Partition),
		Materialization: r.Materialization, Run: r.Run, Blocking: r.Blocking,
		CheckResult: flowstone.CheckResult{Passed: r.Passed, Severity: flowstone.Severity(r.Severity), Description: r.Description, Metadata: meta},
		At:          micros(r.CreatedAt)}
}

// Check runs the checks of asset (all of them, or the one named name)
// against its newest successful materialization at part, in this process,
// and records their results with it, replacing earlier ones. A blocking
// check that now fails makes the materialization not reusable; it does not
// change finished runs.
func (e *Engine) Check(ctx context.Context, p *Pipeline, asset, name string, part flowstone.Partition) ([]CheckRecord, error) {
	if err := e.writable(); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("%w: nil pipeline", ErrUnknownPipeline)
	}
	b, ok := e.bindings[p.name]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not bound to this engine", ErrUnknownPipeline, p.name)
	}
	if p.Asset(asset) == nil {
		return nil, p.unknownAsset(asset)
	}
	checks := p.checks[asset]
	if name != "" {
		c := p.Check(asset, name)
		if c == nil {
			return nil, fmt.Errorf("%w: asset %s has no check %q", ErrUnknownAsset, asset, name)
		}
		checks = []*CheckDef{c}
	}
	if len(checks) == 0 {
		return nil, fmt.Errorf("%w: asset %s has no checks", ErrUnknownAsset, asset)
	}
	mat, err := e.latestMaterialization(ctx, p.name, asset, part)
	if err != nil {
		return nil, err
	}
	out := make([]CheckRecord, 0, len(checks))
	for _, c := range checks {
		rec := e.evaluateCheck(ctx, b, c, part, mat)
		row, err := checkRow(rec)
		if err != nil {
			return nil, err
		}
		if err := e.st.ReplaceCheckResult(ctx, e.be.pool(), row); err != nil {
			return nil, fmt.Errorf("record check %s: %w", c.Name, err)
		}
		e.publishCheck(rec)
		out = append(out, rec)
	}
	return out, nil
}

// CheckResults returns the newest recorded check results of pipeline (of
// asset, or of every asset when empty), newest first, at most limit.
func (e *Engine) CheckResults(ctx context.Context, pipeline, asset string, limit int) ([]CheckRecord, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := e.st.AssetCheckResults(ctx, e.be.pool(), pipeline, asset, limit)
	return checkRecords(rows, err)
}

// NewestCheckResults returns the newest recorded check results of each of
// pipeline's assets named, at most limit per asset, by asset (in the
// order given) and newest first, in one statement (per 100 assets).
func (e *Engine) NewestCheckResults(ctx context.Context, pipeline string, assets []string, limit int) ([]CheckRecord, error) {
	if limit <= 0 {
		limit = 50
	}
	if len(assets) == 0 {
		return nil, nil
	}
	rows, err := e.st.NewestCheckResults(ctx, e.be.pool(), pipeline, assets, limit)
	return checkRecords(rows, err)
}

// MaterializationChecks returns the check results recorded about
// materialization mat, by check name.
func (e *Engine) MaterializationChecks(ctx context.Context, mat string) ([]CheckRecord, error) {
	rows, err := e.st.CheckResults(ctx, e.be.pool(), mat)
	return checkRecords(rows, err)
}

// checkSource gives a check the value of the materialization it checks.
type checkSource struct {
	e     *Engine
	p     *Pipeline
	asset string
	mat   string
}

var errCheckInput = errors.New("a check takes only its asset's value and resources")

func (s checkSource) value(ctx context.Context, asset string, into any) error {
	if asset != s.asset {
		return fmt.Errorf("%w: asked for %s", errCheckInput, asset)
	}
	return s.e.loadMaterialization(ctx, s.p, asset, s.mat, into)
}

func (s checkSource) outcome(context.Context, string) (upstreamOutcome, error) {
	return upstreamOutcome{}, errCheckInput
}

func (s checkSource) partitions(context.Context, string, func(flowstone.Partition, func(any) error) error) error {
	return errCheckInput
}

func (s checkSource) previous(context.Context, any) (flowstone.Partition, bool, error) {
	return "", false, errCheckInput
}

func (s checkSource) view(context.Context, string, string, any) error { return errCheckInput }
