package web_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web"
)

const day = flowstone.Partition("2024-03-01") // a small day: auto-approved, then the gate

// site is a server of the page over an engine with the refunds pipeline,
// one of whose runs waits at its gate.
type site struct {
	*httptest.Server
	eng  *runtime.Engine
	run  string
	csrf string
}

func newSite(t *testing.T, db flowstonetest.Database, opts web.Options) *site {
	t.Helper()
	eng := flowstonetest.Open(t, refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}, db)
	h, err := web.New(eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &site{Server: httptest.NewServer(h), eng: eng}
	t.Cleanup(s.Close)
	ctx := t.Context()
	run, err := eng.Materialize(ctx, refunds.Pipeline(), runtime.Request{Partition: day})
	if err != nil {
		t.Fatal(err)
	}
	s.run = run.ID
	waitGate(t, eng, run.ID)
	var sess struct{ CSRF string }
	s.get(t, "/api/session", &sess)
	s.csrf = sess.CSRF
	return s
}

// waitGate returns once run's refund gate waits for a decision.
func waitGate(t *testing.T, eng *runtime.Engine, run string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		gates, err := eng.Gates(ctx, "refunds")
		if err != nil {
			t.Fatalf("the refund gate of %s never waited: %v", run, err)
		}
		if slices.ContainsFunc(gates, func(g runtime.Gate) bool { return g.RunID == run }) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the refund gate of %s never waited", run)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get reads path as JSON into v, failing on any status but 200.
func (s *site) get(t *testing.T, path string, v any) {
	t.Helper()
	res, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", path, res.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
}

// post sends body to path with headers and returns the status and body.
func (s *site) post(t *testing.T, path string, body any, hdr map[string]string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(string(b)))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(out)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

var users = map[string]string{"ana": "s3cret-pass"}

func TestReadEndpoints(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		s := newSite(t, db, web.Options{Users: users})

		var graph []struct {
			Name   string
			Assets []struct {
				Key, Kind, Group, Partitions, Status string
				Deps                                 []struct{ Asset, Kind string }
				Health                               map[string]int
			}
		}
		s.get(t, "/api/graph", &graph)
		if len(graph) != 1 || graph[0].Name != "refunds" || len(graph[0].Assets) != len(refunds.Pipeline().Assets()) {
			t.Fatalf("graph = %+v, want the refunds pipeline's %d assets", graph, len(refunds.Pipeline().Assets()))
		}
		byKey := map[string]int{}
		for i, a := range graph[0].Assets {
			byKey[a.Key] = i
		}
		triage := graph[0].Assets[byKey[refunds.AssetTriage]]
		if triage.Kind != "router" || triage.Status != "succeeded" || triage.Partitions != "daily" || triage.Health["succeeded"] != 1 {
			t.Errorf("triage = %+v, want a daily router that succeeded in one partition", triage)
		}
		if gate := graph[0].Assets[byKey[refunds.AssetRefund]]; gate.Kind != "gate" || len(gate.Deps) != 1 || gate.Deps[0].Kind != "value" {
			t.Errorf("refund = %+v, want a gate reading decision's value", gate)
		}
		if g := graph[0].Assets[byKey[refunds.AssetRefundRequests]].Group; g != "intake" {
			t.Errorf("refund_requests group = %q, want intake", g)
		}

		var asset struct {
			Node             struct{ Key, Description string }
			Downstream       []string
			Partitions       []struct{ Partition, Status string }
			Materializations []struct {
				Partition, Status, Run string
				Upstream               []struct{ Asset string }
			}
			Preview struct {
				Text  string
				Error string
			}
		}
		s.get(t, "/api/pipelines/refunds/assets/"+refunds.AssetDecision, &asset)
		if asset.Node.Description == "" || !slices.Contains(asset.Downstream, refunds.AssetRefund) {
			t.Errorf("decision = %+v, want its description and refund downstream", asset.Node)
		}
		if len(asset.Partitions) != 1 || asset.Partitions[0].Partition != string(day) || asset.Partitions[0].Status != "succeeded" {
			t.Errorf("decision partitions = %+v, want %s succeeded", asset.Partitions, day)
		}
		if len(asset.Materializations) != 1 || asset.Materializations[0].Run != s.run || len(asset.Materializations[0].Upstream) == 0 {
			t.Errorf("decision materializations = %+v, want one of run %s with its lineage", asset.Materializations, s.run)
		}
		if !strings.Contains(asset.Preview.Text, "reviewed_by") {
			t.Errorf("decision preview = %+v, want the verdict's JSON", asset.Preview)
		}

		var runs []struct{ ID, Status, StartedBy, Partition string }
		s.get(t, "/api/runs?pipeline=refunds&status=running&partition="+string(day)+"&started_by=user", &runs)
		if len(runs) != 1 || runs[0].ID != s.run || runs[0].StartedBy != "user" {
			t.Errorf("running runs = %+v, want %s started by a user", runs, s.run)
		}
		for _, q := range []string{"status=succeeded", "partition=2024-03-02", "started_by=schedule", "pipeline=other"} {
			s.get(t, "/api/runs?"+q, &runs)
			if len(runs) != 0 {
				t.Errorf("runs?%s = %+v, want none", q, runs)
			}
		}

		var run struct {
			ID, Status string
			Nodes      []struct{ Asset, Status, Kind string }
		}
		s.get(t, "/api/runs/"+s.run, &run)
		if run.Status != "running" || !slices.ContainsFunc(run.Nodes, func(n struct{ Asset, Status, Kind string }) bool {
			return n.Asset == refunds.AssetRefund && n.Status == "waiting" && n.Kind == "gate"
		}) {
			t.Errorf("run = %+v, want it running with the refund gate waiting", run)
		}

		var logs []struct {
			Asset   string
			Attempt int
			Lines   []struct{ Level, Message string }
		}
		s.get(t, "/api/runs/"+s.run+"/logs", &logs)
		for _, l := range logs {
			if l.Attempt < 1 || l.Asset == "" {
				t.Errorf("run logs: attempt %+v names no asset or attempt", l)
			}
		}

		var gates []struct{ Run, Asset, Partition string }
		s.get(t, "/api/gates", &gates)
		if len(gates) != 1 || gates[0].Run != s.run || gates[0].Asset != refunds.AssetRefund || gates[0].Partition != string(day) {
			t.Errorf("gates = %+v, want the refund gate of %s", gates, s.run)
		}

		var sched struct {
			Schedules  []any
			Sensors    []any
			Automation []any
		}
		s.get(t, "/api/schedules", &sched)
		if sched.Schedules == nil || sched.Sensors == nil || sched.Automation == nil {
			t.Errorf("schedules = %+v, want (empty) lists", sched)
		}

		var bfs []any
		s.get(t, "/api/backfills", &bfs)
		if len(bfs) != 0 {
			t.Errorf("backfills = %+v, want none", bfs)
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		s := newSite(t, db, web.Options{Users: users})
		for _, path := range []string{"/api/runs/no-such-run", "/api/pipelines/refunds/assets/nope", "/api/pipelines/nope/assets/triage", "/api/runs/no-such-run/events", "/api/runs/no-such-run/logs"} {
			res, err := http.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s: %s, want 404", path, res.Status)
			}
		}
		res, err := http.Get(s.URL + "/api/runs?started_by=robot")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("runs started by a robot: %s, want 400", res.Status)
		}
	})
}

func TestWritesNeedUserAndCSRF(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		s := newSite(t, db, web.Options{Users: users, Token: "api-token-123"})
		approve := map[string]any{"run": s.run, "asset": refunds.AssetRefund, "partition": day, "reason": "receipts checked"}
		for _, tc := range []struct {
			name string
			hdr  map[string]string
			want int
		}{
			{"anonymous", map[string]string{"X-CSRF-Token": s.csrf}, http.StatusUnauthorized},
			{"wrong password", map[string]string{"Authorization": basic("ana", "guess"), "X-CSRF-Token": s.csrf}, http.StatusUnauthorized},
			{"unknown user", map[string]string{"Authorization": basic("bob", "s3cret-pass"), "X-CSRF-Token": s.csrf}, http.StatusUnauthorized},
			{"wrong token", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
			{"no CSRF token", map[string]string{"Authorization": basic("ana", "s3cret-pass")}, http.StatusForbidden},
			{"wrong CSRF token", map[string]string{"Authorization": basic("ana", "s3cret-pass"), "X-CSRF-Token": "forged"}, http.StatusForbidden},
			{"other origin", map[string]string{"Authorization": basic("ana", "s3cret-pass"), "X-CSRF-Token": s.csrf, "Origin": "https://evil.example"}, http.StatusForbidden},
			{"cross site", map[string]string{"Authorization": basic("ana", "s3cret-pass"), "X-CSRF-Token": s.csrf, "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		} {
			if code, body := s.post(t, "/api/gates/approve", approve, tc.hdr); code != tc.want {
				t.Errorf("%s: %d %s, want %d", tc.name, code, body, tc.want)
			}
		}
		if code, body := s.post(t, "/api/runs/"+s.run+"/cancel", nil, nil); code != http.StatusUnauthorized {
			t.Errorf("anonymous cancel: %d %s, want 401", code, body)
		}
		if gates, _ := s.eng.Gates(t.Context(), ""); len(gates) != 1 {
			t.Fatalf("a refused request decided the gate: %+v", gates)
		}

		ok := map[string]string{"Authorization": basic("ana", "s3cret-pass"), "X-CSRF-Token": s.csrf, "Origin": s.URL}
		if code, body := s.post(t, "/api/gates/approve", map[string]any{"run": s.run, "asset": "payout", "partition": day}, ok); code != http.StatusConflict && code != http.StatusNotFound {
			t.Errorf("approving a non-gate: %d %s, want 409", code, body)
		}
		code, body := s.post(t, "/api/gates/approve", approve, ok)
		if code != http.StatusOK || !strings.Contains(body, `"by":"ana"`) || !strings.Contains(body, `"verified":true`) {
			t.Fatalf("approve as ana: %d %s", code, body)
		}
		if code, body := s.post(t, "/api/gates/reject", approve, ok); code != http.StatusConflict {
			t.Errorf("rejecting a decided gate: %d %s, want 409", code, body)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		res, err := s.eng.Wait(ctx, s.run)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != runtime.RunSucceeded {
			t.Errorf("after approval the run %s", res.Status)
		}

		// A bearer-token client writes without a CSRF token, recorded under
		// its "by".
		run, err := s.eng.Materialize(ctx, refunds.Pipeline(), runtime.Request{Partition: "2024-03-02"})
		if err != nil {
			t.Fatal(err)
		}
		waitGate(t, s.eng, run.ID)
		code, body = s.post(t, "/api/gates/reject", map[string]any{"run": run.ID, "asset": refunds.AssetRefund, "partition": "2024-03-02", "by": "billing-bot"},
			map[string]string{"Authorization": "Bearer api-token-123"})
		if code != http.StatusOK || !strings.Contains(body, `"by":"billing-bot"`) || !strings.Contains(body, `"verified":false`) {
			t.Errorf("reject by token: %d %s", code, body)
		}
		// The signed-in user is verified; the token's "by" is its own say.
		var decided []struct {
			Run      string
			Decision struct {
				Action, By, Decider string
				Verified            bool
			}
		}
		s.get(t, "/api/gates/decided", &decided)
		who := map[string]string{}
		for _, g := range decided {
			who[g.Run] = g.Decision.Action + " " + g.Decision.Decider
			if g.Decision.Verified != (g.Decision.By == "ana") {
				t.Errorf("decision %+v: verified wrong", g.Decision)
			}
		}
		if who[s.run] != "approve ana" || who[run.ID] != "reject billing-bot (unverified)" {
			t.Errorf("decided gates: %v", who)
		}
	})
}

func TestCancelAndReadOnly(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		s := newSite(t, db, web.Options{Token: "tok"})
		code, body := s.post(t, "/api/runs/"+s.run+"/cancel", nil, map[string]string{"Authorization": "Bearer tok"})
		if code != http.StatusOK {
			t.Fatalf("cancel: %d %s", code, body)
		}
		var run struct{ Status string }
		s.get(t, "/api/runs/"+s.run, &run)
		if run.Status != "cancelled" {
			t.Errorf("after cancel the run is %s", run.Status)
		}
		if code, body := s.post(t, "/api/backfills/nope/cancel", nil, map[string]string{"Authorization": "Bearer tok"}); code != http.StatusNotFound {
			t.Errorf("cancel an unknown backfill: %d %s, want 404", code, body)
		}
		id, err := s.eng.Backfill(t.Context(), refunds.Pipeline(), runtime.BackfillRequest{From: "2024-03-02", To: "2024-03-04"})
		if err != nil {
			t.Fatal(err)
		}
		var bfs []struct {
			ID, Status string
			Total      int
			Order      []string
		}
		s.get(t, "/api/backfills", &bfs)
		if len(bfs) != 1 || bfs[0].ID != id || bfs[0].Total != 3 || bfs[0].Status != "running" || len(bfs[0].Order) != 3 {
			t.Fatalf("backfills = %+v, want %s running over 3 partitions", bfs, id)
		}
		if code, body := s.post(t, "/api/backfills/"+id+"/cancel", nil, map[string]string{"Authorization": "Bearer tok"}); code != http.StatusOK {
			t.Fatalf("cancel the backfill: %d %s", code, body)
		}
		s.get(t, "/api/backfills", &bfs)
		if len(bfs) != 1 || bfs[0].Status != "cancelled" {
			t.Errorf("after cancel, backfills = %+v", bfs)
		}

		ro, err := web.New(s.eng, web.Options{})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		ro.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/runs/"+s.run+"/cancel", nil))
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "writes are disabled") {
			t.Errorf("a read-only page cancelled: %d %s", rec.Code, rec.Body)
		}
	})
}

func TestRunEventsFollowTheRun(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		s := newSite(t, db, web.Options{Users: users})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/runs/"+s.run+"/events", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
			t.Fatalf("events Content-Type %q", ct)
		}
		lines := bufio.NewScanner(res.Body)
		lines.Buffer(nil, 1<<20)
		next := func() (event, data string) {
			for lines.Scan() {
				line := lines.Text()
				switch {
				case strings.HasPrefix(line, "event: "):
					event = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					data = strings.TrimPrefix(line, "data: ")
				case line == "" && event != "":
					return event, data
				}
			}
			t.Fatalf("the stream ended: %v", lines.Err())
			return "", ""
		}
		ev, data := next()
		if ev != "run" || !strings.Contains(data, `"status":"running"`) {
			t.Fatalf("first event %s %s, want the running run", ev, data)
		}
		if err := s.eng.Approve(ctx, runtime.Ref{RunID: s.run, Asset: refunds.AssetRefund, Partition: day}, "ana", "ok"); err != nil {
			t.Fatal(err)
		}
		var last string
		for {
			ev, data := next()
			if ev == "end" {
				break
			}
			last = data
		}
		if !strings.Contains(last, `"status":"succeeded"`) {
			t.Errorf("last run event %s, want the run succeeded", last)
		}
	})
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		eng := flowstonetest.Open(t, refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}, db)
		river := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "river view") })
		h, err := web.New(eng, web.Options{River: river})
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/", "/app.js", "/vendor/dagre/dagre.min.js", "/api/session"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != http.StatusOK {
				t.Errorf("GET %s: %d", path, rec.Code)
			}
			if rec.Header().Get("X-Frame-Options") != "DENY" || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("GET %s: headers %v, want X-Frame-Options DENY and a CSP", path, rec.Header())
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/river/", nil))
		if rec.Body.String() != "river view" || rec.Header().Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET /river/: %q %v", rec.Body, rec.Header())
		}
		for _, tc := range []struct {
			name string
			hdr  map[string]string
			want int
		}{
			{"anonymous", nil, http.StatusUnauthorized},
			{"other origin", map[string]string{"Authorization": basic("ana", "pw"), "Origin": "https://evil.example"}, http.StatusForbidden},
			{"signed in", map[string]string{"Authorization": basic("ana", "pw")}, http.StatusOK},
		} {
			h, err := web.New(eng, web.Options{River: river, Users: map[string]string{"ana": "pw"}})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/river/api/jobs/cancel", nil)
			for k, v := range tc.hdr {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("River write, %s: %d %s, want %d", tc.name, rec.Code, rec.Body, tc.want)
			}
			if tc.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("River write, %s: no basic auth challenge", tc.name)
			}
		}
		var sess map[string]any
		if err := json.Unmarshal(func() []byte {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/session", nil))
			return rec.Body.Bytes()
		}(), &sess); err != nil {
			t.Fatal(err)
		}
		if sess["river"] != true || sess["writable"] != false {
			t.Errorf("session = %v, want river mounted and no writes", sess)
		}
		for _, v := range sess {
			if s, ok := v.(string); ok && strings.Contains(s, "://") {
				t.Errorf("session shows a database URL: %v", sess)
			}
		}
	})
}
