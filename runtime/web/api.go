package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
)

// previewLimit caps the value shown on an asset's page.
const previewLimit = 4 << 10

func (h *Handler) json(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Debug("web: write response", "error", err)
	}
}

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// failErr answers err with the status its kind calls for: 404 for what
// does not exist, 409 for a decision that comes too late, 400 for a bad
// request, 503 while the database is unreachable, 500 otherwise.
func (h *Handler) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, runtime.ErrRunNotFound), errors.Is(err, runtime.ErrNotInRun), errors.Is(err, runtime.ErrUnknownAsset),
		errors.Is(err, runtime.ErrBackfillNotFound), errors.Is(err, runtime.ErrNotMaterialized), errors.Is(err, errUnknownPipeline):
		h.fail(w, http.StatusNotFound, err.Error())
	case errors.Is(err, runtime.ErrGateResolved), errors.Is(err, runtime.ErrNotWaiting):
		h.fail(w, http.StatusConflict, err.Error())
	case errors.Is(err, errBadRequest), errors.Is(err, flowstone.ErrInvalidKey):
		h.fail(w, http.StatusBadRequest, err.Error())
	case runtime.IsUnreachable(err) && r.Context().Err() == nil:
		// The engine logs the outage once; the page retries.
		w.Header().Set("Retry-After", "3")
		h.fail(w, http.StatusServiceUnavailable, "database unreachable, retrying: "+err.Error())
	default:
		h.log.ErrorContext(r.Context(), "web: "+r.Method+" "+r.URL.Path, "error", err)
		h.fail(w, http.StatusInternalServerError, err.Error())
	}
}

var (
	errUnknownPipeline = errors.New("unknown pipeline")
	errBadRequest      = errors.New("bad request")
)

func (h *Handler) pipeline(name string) (*runtime.Pipeline, error) {
	p, err := h.eng.Pipeline(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", errUnknownPipeline, name)
	}
	return p, nil
}

// timeJSON is a time for the page: RFC 3339 in UTC, or null when zero.
func timeJSON(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

type materializationJSON struct {
	ID          string              `json:"id"`
	Partition   flowstone.Partition `json:"partition"`
	Run         string              `json:"run"`
	Status      string              `json:"status"`
	CodeVersion string              `json:"codeVersion"`
	Attempts    int                 `json:"attempts"`
	Error       string              `json:"error,omitempty"`
	Metadata    map[string]any      `json:"metadata,omitempty"`
	StartedAt   *time.Time          `json:"startedAt"`
	FinishedAt  *time.Time          `json:"finishedAt"`
	Upstream    []lineageJSON       `json:"upstream,omitempty"`
	// Checks are the results of the checks run against it.
	Checks []checkJSON `json:"checks,omitempty"`
}

type lineageJSON struct {
	Asset           string              `json:"asset"`
	Partition       flowstone.Partition `json:"partition"`
	Materialization string              `json:"materialization"`
}

func toMaterialization(m runtime.Materialization) materializationJSON {
	out := materializationJSON{ID: m.ID, Partition: m.Partition, Run: m.RunID, Status: m.Status, CodeVersion: m.CodeVersion,
		Attempts: m.Attempts, Error: m.Error, Metadata: m.Metadata, StartedAt: timeJSON(m.StartedAt), FinishedAt: timeJSON(m.FinishedAt)}
	for _, u := range m.Upstream {
		out.Upstream = append(out.Upstream, lineageJSON{Asset: u.Asset, Partition: u.Partition, Materialization: u.Materialization})
	}
	return out
}

// asset answers an asset's page: its definition, partitions,
// materializations with metadata, lineage and a preview of its newest
// value.
func (h *Handler) asset(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := h.pipeline(r.PathValue("pipeline"))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	key := r.PathValue("asset")
	a := p.Asset(key)
	if a == nil {
		h.failErr(w, r, fmt.Errorf("%w: %q in pipeline %s", runtime.ErrUnknownAsset, key, p.Name()))
		return
	}
	mats, err := h.eng.Materializations(ctx, p.Name(), key, 50)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	hl, err := h.pipelineHealth(ctx, p, time.Now())
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	node := describe(a)
	hl.mark(&node)
	out := map[string]any{
		"pipeline": p.Name(), "node": node, "downstream": p.Downstream(key), "valueType": a.ValueType,
		"retries": a.Retries, "timeout": durationText(a.Timeout), "queue": a.Queue, "resources": a.Resources,
		"checks": checkDefs(p, key),
	}
	// The checks of the materializations listed, by materialization.
	byMat := map[string][]checkJSON{}
	if len(p.Checks(key)) > 0 && len(mats) > 0 {
		rs, err := h.eng.CheckResults(ctx, p.Name(), key, len(mats)*len(p.Checks(key))+len(p.Checks(key)))
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		for _, c := range rs {
			byMat[c.Materialization] = append(byMat[c.Materialization], toCheck(c))
		}
	}
	list := make([]materializationJSON, len(mats))
	for i, m := range mats {
		list[i] = toMaterialization(m)
		list[i].Checks = byMat[m.ID]
	}
	out["materializations"] = list
	if a.Partitions != nil {
		parts, err := h.partitions(ctx, p.Name(), key)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		out["partitions"] = parts
	}
	part := flowstone.Partition(r.URL.Query().Get("partition"))
	if part == "" && a.Partitions != nil && len(mats) > 0 {
		part = mats[0].Partition
	}
	if a.HasValue {
		out["preview"] = h.preview(ctx, p.Name(), key, part)
	}
	if m, ok := shown(mats, part, a.Partitions != nil); ok {
		logs, err := h.eng.Logs(ctx, runtime.Ref{RunID: m.RunID, Asset: key, Partition: m.Partition})
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		out["logs"] = toLogs(logs)
		out["logsOf"] = map[string]any{"run": m.RunID, "partition": m.Partition}
	}
	h.json(w, out)
}

// shown picks the materialization whose logs the asset page shows: the
// newest, of the chosen partition when the asset is partitioned.
func shown(mats []runtime.Materialization, part flowstone.Partition, partitioned bool) (runtime.Materialization, bool) {
	for _, m := range mats {
		if !partitioned || m.Partition == part {
			return m, true
		}
	}
	return runtime.Materialization{}, false
}

type logAttemptJSON struct {
	Asset     string              `json:"asset"`
	Partition flowstone.Partition `json:"partition"`
	Attempt   int                 `json:"attempt"`
	Truncated bool                `json:"truncated,omitempty"`
	Lines     []logLineJSON       `json:"lines"`
}

type logLineJSON struct {
	Time    *time.Time     `json:"time"`
	Level   string         `json:"level"`
	Message string         `json:"message"`
	Attrs   map[string]any `json:"attrs,omitempty"`
}

func toLogs(attempts []runtime.LogAttempt) []logAttemptJSON {
	out := make([]logAttemptJSON, len(attempts))
	for i, a := range attempts {
		la := logAttemptJSON{Asset: a.Ref.Asset, Partition: a.Ref.Partition, Attempt: a.Attempt, Truncated: a.Truncated, Lines: []logLineJSON{}}
		for _, l := range a.Lines {
			la.Lines = append(la.Lines, logLineJSON{Time: timeJSON(l.Time), Level: l.Level.String(), Message: l.Message, Attrs: l.Attrs})
		}
		out[i] = la
	}
	return out
}

// runLogs answers what asset code logged in a run, attempt by attempt.
func (h *Handler) runLogs(w http.ResponseWriter, r *http.Request) {
	logs, err := h.eng.Logs(r.Context(), runtime.Ref{RunID: r.PathValue("id")})
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, toLogs(logs))
}

type previewJSON struct {
	Partition flowstone.Partition `json:"partition"`
	Text      string              `json:"text,omitempty"`
	Truncated bool                `json:"truncated,omitempty"`
	Size      int                 `json:"size"`
	Error     string              `json:"error,omitempty"`
}

// preview shows the newest successful value of asset at part, as indented
// JSON cut at previewLimit.
func (h *Handler) preview(ctx context.Context, pipeline, asset string, part flowstone.Partition) previewJSON {
	pv := previewJSON{Partition: part}
	v, err := runtime.Load[any](ctx, h.eng, pipeline, asset, part)
	if err != nil {
		pv.Error = err.Error()
		return pv
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		pv.Error = err.Error()
		return pv
	}
	pv.Size = len(b)
	if len(b) > previewLimit {
		b, pv.Truncated = b[:previewLimit], true
	}
	pv.Text = string(b)
	return pv
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

type runJSON struct {
	ID         string              `json:"id"`
	Pipeline   string              `json:"pipeline"`
	Partition  flowstone.Partition `json:"partition"`
	Status     runtime.RunStatus   `json:"status"`
	StartedBy  string              `json:"startedBy,omitempty"`
	Pending    int                 `json:"pending"`
	Failed     int                 `json:"failed"`
	CreatedAt  *time.Time          `json:"createdAt"`
	FinishedAt *time.Time          `json:"finishedAt"`
}

// runs answers the run listing, filtered by the query's pipeline, status,
// partition and started_by.
func (h *Handler) runs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	f := runtime.RunFilter{Pipeline: q.Get("pipeline"), Status: runtime.RunStatus(q.Get("status")),
		Partition: flowstone.Partition(q.Get("partition")), StartedBy: q.Get("started_by"), Limit: min(limit, 500)}
	found, err := h.eng.FindRuns(r.Context(), f)
	if err != nil {
		if f.StartedBy != "" {
			err = fmt.Errorf("%w: %w", errBadRequest, err)
		}
		h.failErr(w, r, err)
		return
	}
	out := make([]runJSON, len(found))
	for i, f := range found {
		out[i] = runJSON{ID: f.ID, Pipeline: f.Pipeline, Partition: f.Partition, Status: f.Status, StartedBy: f.StartedBy,
			Pending: f.Pending, Failed: f.Failed, CreatedAt: timeJSON(f.CreatedAt), FinishedAt: timeJSON(f.FinishedAt)}
	}
	h.json(w, out)
}

type nodeRunJSON struct {
	Asset           string              `json:"asset"`
	Partition       flowstone.Partition `json:"partition"`
	Kind            string              `json:"kind"`
	Status          runtime.AssetStatus `json:"status"`
	Error           string              `json:"error,omitempty"`
	Attempts        int                 `json:"attempts"`
	Materialization string              `json:"materialization,omitempty"`
	StartedAt       *time.Time          `json:"startedAt"`
	FinishedAt      *time.Time          `json:"finishedAt"`
	Scatter         *scatterJSON        `json:"scatter,omitempty"`
	// Checks are the results of the checks run against its
	// materialization.
	Checks []checkJSON `json:"checks,omitempty"`
}

type scatterJSON struct {
	Total  int `json:"total"`
	Done   int `json:"done"`
	Failed int `json:"failed"`
}

type runDetailJSON struct {
	runJSON
	Nodes []nodeRunJSON `json:"nodes"`
}

// runDetail reads run id with every node, in the pipeline's order, and
// the progress of its scatter nodes.
func (h *Handler) runDetail(ctx context.Context, id string) (runDetailJSON, error) {
	res, err := h.eng.Run(ctx, id)
	if err != nil {
		return runDetailJSON{}, err
	}
	out := runDetailJSON{runJSON: runJSON{ID: res.ID, Pipeline: res.Pipeline, Partition: res.Partition, Status: res.Status,
		CreatedAt: timeJSON(res.CreatedAt), FinishedAt: timeJSON(res.FinishedAt)}}
	p, _ := h.eng.Pipeline(res.Pipeline)
	for _, key := range res.Order {
		kind := ""
		if p != nil && p.Asset(key) != nil {
			kind = p.Asset(key).Kind
		}
		for _, part := range sortedPartitions(res.ByPartition[key]) {
			a := res.ByPartition[key][part]
			n := nodeRunJSON{Asset: key, Partition: part, Kind: kind, Status: a.Status, Error: a.Error, Attempts: a.Attempts,
				Materialization: a.Materialization, StartedAt: timeJSON(a.StartedAt), FinishedAt: timeJSON(a.FinishedAt)}
			if kind == "scatter" && a.Status != runtime.StatusPending {
				if sp, err := h.eng.ScatterProgress(ctx, runtime.Ref{RunID: id, Asset: key, Partition: part}); err == nil {
					n.Scatter = &scatterJSON{Total: sp.Total, Done: sp.Done, Failed: sp.Failed}
				}
			}
			if p != nil && a.Materialization != "" && len(p.Checks(key)) > 0 {
				rs, err := h.eng.MaterializationChecks(ctx, a.Materialization)
				if err != nil {
					return out, err
				}
				for _, c := range rs {
					n.Checks = append(n.Checks, toCheck(c))
				}
			}
			out.Nodes = append(out.Nodes, n)
			if a.Status.Terminal() {
				continue
			}
			out.Pending++
		}
		if res.Assets[key].Status == runtime.StatusFailed || res.Assets[key].Status == runtime.StatusUpstreamFailed {
			out.Failed++
		}
	}
	return out, nil
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request) {
	out, err := h.runDetail(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, out)
}

func (h *Handler) cancelRun(w http.ResponseWriter, r *http.Request, _ string) {
	if err := h.eng.Cancel(r.Context(), r.PathValue("id")); err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, map[string]string{"cancelled": r.PathValue("id")})
}

type gateJSON struct {
	Pipeline  string              `json:"pipeline"`
	Run       string              `json:"run"`
	Asset     string              `json:"asset"`
	Partition flowstone.Partition `json:"partition"`
	Since     *time.Time          `json:"since"`
	Decision  *gateDecisionJSON   `json:"decision,omitempty"`
}

// gateDecisionJSON is a gate's stored decision. Verified is false when no
// sign-in vouched for By; decider words it ("ana (unverified)").
type gateDecisionJSON struct {
	Action   string     `json:"action"`
	By       string     `json:"by"`
	Verified bool       `json:"verified"`
	Decider  string     `json:"decider"`
	Reason   string     `json:"reason,omitempty"`
	At       *time.Time `json:"at"`
}

func toGates(gs []runtime.Gate) []gateJSON {
	out := make([]gateJSON, len(gs))
	for i, g := range gs {
		out[i] = gateJSON{Pipeline: g.Pipeline, Run: g.RunID, Asset: g.Asset, Partition: g.Partition, Since: timeJSON(g.Since)}
		if d := g.Decision; d != nil {
			out[i].Decision = &gateDecisionJSON{Action: d.Action, By: d.By, Verified: d.Verified, Decider: d.Decider(), Reason: d.Reason, At: timeJSON(d.At)}
		}
	}
	return out
}

// gates answers the gates waiting for a decision.
func (h *Handler) gates(w http.ResponseWriter, r *http.Request) {
	gs, err := h.eng.Gates(r.Context(), r.URL.Query().Get("pipeline"))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, toGates(gs))
}

// decidedGates answers the newest gate decisions: who decided what, and
// whether a sign-in vouched for the name.
func (h *Handler) decidedGates(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	gs, err := h.eng.DecidedGates(r.Context(), r.URL.Query().Get("pipeline"), min(limit, 500))
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, toGates(gs))
}

// decision is the body of an approve or reject.
type decision struct {
	Run       string              `json:"run"`
	Asset     string              `json:"asset"`
	Partition flowstone.Partition `json:"partition"`
	Reason    string              `json:"reason"`
	// By names who decided, for a bearer-token client; a signed-in user is
	// recorded under their own name.
	By string `json:"by"`
}

func (h *Handler) decide(w http.ResponseWriter, r *http.Request, user string) {
	var d decision
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&d); err != nil {
		h.fail(w, http.StatusBadRequest, "body: want JSON {run, asset, partition, reason}: "+err.Error())
		return
	}
	if d.Run == "" || d.Asset == "" {
		h.fail(w, http.StatusBadRequest, "body: run and asset are required")
		return
	}
	// A signed-in user is who they signed in as; a bearer-token client
	// names whoever it likes, recorded as unverified.
	who := runtime.Decision{By: user, Verified: user != "", Reason: d.Reason}
	if !who.Verified {
		who.By = d.By
		if who.By == "" {
			who.By = "token"
		}
	}
	ref := runtime.Ref{RunID: d.Run, Asset: d.Asset, Partition: d.Partition}
	switch action := r.PathValue("action"); action {
	case "approve", "reject":
		who.Action = action
	default:
		h.fail(w, http.StatusNotFound, "gates: want approve or reject, not "+strconv.Quote(action))
		return
	}
	if err := h.eng.Decide(r.Context(), ref, who); err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, map[string]any{"decided": who.Action, "by": who.By, "verified": who.Verified, "ref": ref.String()})
}

type backfillJSON struct {
	ID         string                         `json:"id"`
	Pipeline   string                         `json:"pipeline"`
	Status     string                         `json:"status"`
	Total      int                            `json:"total"`
	Pending    int                            `json:"pending"`
	Running    int                            `json:"running"`
	Succeeded  int                            `json:"succeeded"`
	Failed     int                            `json:"failed"`
	Cancelled  int                            `json:"cancelled"`
	CreatedAt  *time.Time                     `json:"createdAt"`
	FinishedAt *time.Time                     `json:"finishedAt"`
	Partitions map[flowstone.Partition]string `json:"partitions"`
	Order      []flowstone.Partition          `json:"order"`
}

func (h *Handler) backfills(w http.ResponseWriter, r *http.Request) {
	bs, err := h.eng.Backfills(r.Context(), r.URL.Query().Get("pipeline"), 50)
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	out := make([]backfillJSON, len(bs))
	for i, b := range bs {
		out[i] = backfillJSON{ID: b.ID, Pipeline: b.Pipeline, Status: b.Status, Total: b.Total, Pending: b.Pending, Running: b.Running,
			Succeeded: b.Succeeded, Failed: b.Failed, Cancelled: b.Cancelled, CreatedAt: timeJSON(b.CreatedAt), FinishedAt: timeJSON(b.FinishedAt),
			Partitions: b.Partitions, Order: b.Order}
	}
	h.json(w, out)
}

func (h *Handler) cancelBackfill(w http.ResponseWriter, r *http.Request, _ string) {
	if err := h.eng.CancelBackfill(r.Context(), r.PathValue("id")); err != nil {
		h.failErr(w, r, err)
		return
	}
	h.json(w, map[string]string{"cancelled": r.PathValue("id")})
}

type scheduleJSON struct {
	Pipeline string    `json:"pipeline"`
	Asset    string    `json:"asset"`
	Cron     string    `json:"cron"`
	Runs     []runJSON `json:"runs"`
}

type sensorJSON struct {
	Pipeline    string     `json:"pipeline"`
	Name        string     `json:"name"`
	Description string     `json:"description,omitempty"`
	Every       string     `json:"every"`
	Targets     []string   `json:"targets"`
	Cursor      string     `json:"cursor"`
	Evaluations int        `json:"evaluations"`
	Runs        int        `json:"runs"`
	LastError   string     `json:"lastError,omitempty"`
	EvaluatedAt *time.Time `json:"evaluatedAt"`
}

// schedules answers the schedules (with the runs their ticks started)
// and the sensors (with their stored cursor and last error).
func (h *Handler) schedules(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := struct {
		Schedules  []scheduleJSON `json:"schedules"`
		Sensors    []sensorJSON   `json:"sensors"`
		Automation []decisionJSON `json:"automation"`
	}{Schedules: []scheduleJSON{}, Sensors: []sensorJSON{}, Automation: []decisionJSON{}}
	for _, p := range h.eng.Pipelines() {
		var ticks []runJSON
		for _, a := range p.Assets() {
			if a.Schedule == "" {
				continue
			}
			if ticks == nil {
				found, err := h.eng.FindRuns(ctx, runtime.RunFilter{Pipeline: p.Name(), StartedBy: runtime.StartedBySchedule, Limit: 20})
				if err != nil {
					h.failErr(w, r, err)
					return
				}
				ticks = []runJSON{}
				for _, f := range found {
					ticks = append(ticks, runJSON{ID: f.ID, Pipeline: f.Pipeline, Partition: f.Partition, Status: f.Status, StartedBy: f.StartedBy,
						CreatedAt: timeJSON(f.CreatedAt), FinishedAt: timeJSON(f.FinishedAt)})
				}
			}
			out.Schedules = append(out.Schedules, scheduleJSON{Pipeline: p.Name(), Asset: a.Key, Cron: a.Schedule, Runs: ticks})
		}
		state, err := h.eng.Sensors(ctx, p.Name())
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		for _, s := range p.Sensors() {
			sj := sensorJSON{Pipeline: p.Name(), Name: s.Name, Description: s.Description, Every: s.Every.String(), Targets: s.Targets}
			for _, st := range state {
				if st.Name == s.Name {
					sj.Cursor, sj.Evaluations, sj.Runs, sj.LastError, sj.EvaluatedAt = st.Cursor, st.Evaluations, st.Runs, st.LastError, timeJSON(st.EvaluatedAt)
				}
			}
			out.Sensors = append(out.Sensors, sj)
		}
	}
	ds, err := h.eng.AutomationDecisions(ctx, runtime.DecisionFilter{Limit: 30})
	if err != nil {
		h.failErr(w, r, err)
		return
	}
	for _, d := range ds {
		out.Automation = append(out.Automation, decisionJSON{Pipeline: d.Pipeline, Asset: d.Asset, Partition: d.Partition,
			Decision: string(d.Decision), Run: d.RunID, Reason: d.Reason, EvaluatedAt: timeJSON(d.EvaluatedAt)})
	}
	h.json(w, out)
}

// decisionJSON is one decision of declarative automation.
type decisionJSON struct {
	Pipeline    string              `json:"pipeline"`
	Asset       string              `json:"asset"`
	Partition   flowstone.Partition `json:"partition"`
	Decision    string              `json:"decision"`
	Run         string              `json:"run,omitempty"`
	Reason      string              `json:"reason"`
	EvaluatedAt *time.Time          `json:"evaluatedAt"`
}
