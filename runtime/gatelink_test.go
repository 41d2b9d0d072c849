package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// linkServer serves e's gate links as serve-gates does and plays the
// browser and the attacker against it.
type linkServer struct {
	t   *testing.T
	srv *httptest.Server
}

func newLinkServer(t *testing.T, h http.Handler) *linkServer {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &linkServer{t: t, srv: srv}
}

type linkAnswer struct {
	code int
	body string
}

func (a linkAnswer) String() string { return fmt.Sprintf("%d %s", a.code, a.body) }

// do sends a request to the link of token and checks the headers every
// answer carries.
func (s *linkServer) do(method, token string, form url.Values, hdr map[string]string) linkAnswer {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.srv.URL+"/gate?token="+url.QueryEscape(token), body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'") {
		s.t.Errorf("%s %d: X-Frame-Options %q, Content-Security-Policy %q", method, resp.StatusCode, resp.Header.Get("X-Frame-Options"), csp)
	}
	return linkAnswer{resp.StatusCode, string(b)}
}

var formTokenField = regexp.MustCompile(`name="form" value="([^"]+)"`)

// confirm opens the link and submits its form as a browser does, as by
// (empty when a proxy says who).
func (s *linkServer) confirm(token, by string, hdr map[string]string) linkAnswer {
	s.t.Helper()
	page := s.do(http.MethodGet, token, nil, hdr)
	m := formTokenField.FindStringSubmatch(page.body)
	if page.code != http.StatusOK || m == nil {
		return page
	}
	h := map[string]string{"Origin": s.srv.URL}
	for k, v := range hdr {
		h[k] = v
	}
	return s.do(http.MethodPost, token, url.Values{"form": {m[1]}, "by": {by}, "reason": {"looks right"}}, h)
}

func mustToken(t *testing.T, e *Engine, ref Ref, action string) string {
	t.Helper()
	tok, err := e.GateToken(ref, action, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGateLinksDecideOnlyFromTheirPage fails while GateHandler applies any
// POST carrying the link (an empty `curl -X POST LINK` approved), answers
// without X-Frame-Options and a policy, and shows a decided link's form
// again.
func TestGateLinksDecideOnlyFromTheirPage(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		e, run := waitingGate(t, db)
		s := newLinkServer(t, e.GateHandler())
		ref := Ref{RunID: run.ID, Asset: "refund"}
		approve, reject := mustToken(t, e, ref, "approve"), mustToken(t, e, ref, "reject")

		page := s.do(http.MethodGet, approve, nil, nil)
		form := formTokenField.FindStringSubmatch(page.body)
		if page.code != http.StatusOK || form == nil {
			t.Fatalf("GET: %s", page)
		}
		rejectForm := formTokenField.FindStringSubmatch(s.do(http.MethodGet, reject, nil, nil).body)
		for _, c := range []struct {
			name string
			form url.Values
			hdr  map[string]string
			want string
		}{
			{"bare POST", nil, nil, "no Origin or Referer header"},
			{"no form token", url.Values{"by": {"eve"}}, map[string]string{"Origin": s.srv.URL}, "the form token is missing or wrong"},
			{"another link's form token", url.Values{"form": {rejectForm[1]}, "by": {"eve"}}, map[string]string{"Origin": s.srv.URL}, "the form token is missing or wrong"},
			{"another site's form", url.Values{"form": {form[1]}, "by": {"eve"}}, map[string]string{"Origin": "https://evil.example"}, "it comes from https://evil.example"},
			{"another site's page", url.Values{"form": {form[1]}, "by": {"eve"}}, map[string]string{"Referer": "https://evil.example/x"}, "it comes from a page of another site"},
			{"cross-site fetch", url.Values{"form": {form[1]}, "by": {"eve"}}, map[string]string{"Origin": s.srv.URL, "Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"},
			{"sandboxed frame", url.Values{"form": {form[1]}, "by": {"eve"}}, map[string]string{"Origin": "null"}, "it comes from null"},
		} {
			got := s.do(http.MethodPost, approve, c.form, c.hdr)
			if got.code != http.StatusForbidden || !strings.Contains(got.body, c.want) || !strings.Contains(got.body, "Nothing changed") {
				t.Errorf("%s: %s\nwant 403 with %q", c.name, got, c.want)
			}
		}
		if got := s.do(http.MethodPut, approve, nil, nil); got.code != http.StatusMethodNotAllowed {
			t.Errorf("PUT: %s", got)
		}
		if got := s.do(http.MethodGet, "forged."+approve, nil, nil); got.code != http.StatusForbidden {
			t.Errorf("forged: %s", got)
		}
		if gs, _ := e.Gates(ctx, ""); len(gs) != 1 || gs[0].Decision != nil {
			t.Fatalf("a refused POST decided: %+v", gs)
		}

		// A nameless form is refused; the page's own form decides.
		if got := s.do(http.MethodPost, approve, url.Values{"form": {form[1]}}, map[string]string{"Origin": s.srv.URL}); got.code != http.StatusBadRequest {
			t.Errorf("no name: %s", got)
		}
		if got := s.confirm(approve, "dora", nil); got.code != http.StatusOK || !strings.Contains(got.body, "refund of run "+run.ID+": approved by dora (unverified).") {
			t.Fatalf("confirm: %s", got)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
	})
}

// TestGateLinksWorkOnce fails while a decided link shows its form again
// (200) instead of who decided.
func TestGateLinksWorkOnce(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		e, run := waitingGate(t, db)
		s := newLinkServer(t, e.GateHandler())
		ref := Ref{RunID: run.ID, Asset: "refund"}
		approve, reject := mustToken(t, e, ref, "approve"), mustToken(t, e, ref, "reject")
		// The approve page opened before the rejection, submitted after.
		stale := formTokenField.FindStringSubmatch(s.do(http.MethodGet, approve, nil, nil).body)

		if got := s.confirm(reject, "carl", nil); got.code != http.StatusOK || !strings.Contains(got.body, "rejected by carl (unverified)") {
			t.Fatalf("reject: %s", got)
		}
		for name, token := range map[string]string{"the reject link again": reject, "the approve link": approve} {
			got := s.do(http.MethodGet, token, nil, nil)
			if got.code != http.StatusConflict || !strings.Contains(got.body, "was already decided by carl (unverified) at ") ||
				!strings.Contains(got.body, ": rejected (looks right)") || strings.Contains(got.body, "<form") {
				t.Errorf("GET %s: %s", name, got)
			}
		}
		got := s.do(http.MethodPost, approve, url.Values{"form": {stale[1]}, "by": {"ana"}}, map[string]string{"Origin": s.srv.URL})
		if got.code != http.StatusConflict || !strings.Contains(got.body, "already decided by carl (unverified)") {
			t.Errorf("approve after reject: %s", got)
		}
		if err := e.Approve(ctx, ref, "ana", ""); !errors.Is(err, ErrGateResolved) || !strings.Contains(err.Error(), "was rejected by carl (unverified) at ") {
			t.Errorf("Approve after the link: %v", err)
		}
		res := waitRun(t, e, run.ID)
		if res.Assets["refund"].Status != StatusFailed || !strings.Contains(res.Assets["refund"].Error, "rejected by carl") {
			t.Fatalf("after the reject link: %+v", res.Assets["refund"])
		}
		ds, err := e.DecidedGates(ctx, "gates", 0)
		if err != nil || len(ds) != 1 {
			t.Fatalf("DecidedGates = %+v, %v", ds, err)
		}
		if d := ds[0].Decision; d == nil || d.Action != "reject" || d.By != "carl" || d.Verified || d.Reason != "looks right" || d.Decider() != "carl (unverified)" {
			t.Errorf("decision = %+v", ds[0].Decision)
		}
	})
}

// TestGateLinksTakeTheProxysUser decides two gates of one run through
// links: one behind an authenticating proxy (its header names who decides,
// verified), one without (the typed name, unverified, and the header
// ignored). It fails while by is whatever the form says.
func TestGateLinksTakeTheProxysUser(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		times := func(k int) RunFunc {
			return func(ctx context.Context, in *Inputs) (any, error) {
				n, err := Input[int](ctx, in, "amount")
				return n * k, err
			}
		}
		p := NewPipeline(PipelineDef{Name: "twogates", Assets: []AssetDef{
			def("amount", func(ctx context.Context, in *Inputs) (any, error) { return 21, nil }),
			gate("double", times(2), on("amount")),
			gate("triple", times(3), on("amount")),
		}})
		cfg := db.config(t)
		cfg.Secret = testSecret
		e := openEngine(t, cfg, Bind(p, nil))
		run, _ := e.Materialize(ctx, p, Request{})
		waitForGates(t, e, run.ID, 2)
		proxied := newLinkServer(t, e.GateHandler(TrustUserHeader("X-Forwarded-User")))
		open := newLinkServer(t, e.GateHandler())
		double := mustToken(t, e, Ref{RunID: run.ID, Asset: "double"}, "approve")
		triple := mustToken(t, e, Ref{RunID: run.ID, Asset: "triple"}, "approve")

		if got := proxied.do(http.MethodGet, double, nil, nil); got.code != http.StatusForbidden || !strings.Contains(got.body, "X-Forwarded-User header") {
			t.Errorf("around the proxy: %s", got)
		}
		alice := map[string]string{"X-Forwarded-User": "alice"}
		page := proxied.do(http.MethodGet, double, nil, alice)
		if page.code != http.StatusOK || !strings.Contains(page.body, "You decide as <b>alice</b>") || strings.Contains(page.body, `name="by"`) {
			t.Errorf("page behind the proxy: %s", page)
		}
		// A form fetched by alice does not decide as bob.
		form := formTokenField.FindStringSubmatch(page.body)
		got := proxied.do(http.MethodPost, double, url.Values{"form": {form[1]}}, map[string]string{"X-Forwarded-User": "bob", "Origin": proxied.srv.URL})
		if got.code != http.StatusForbidden {
			t.Errorf("alice's form as bob: %s", got)
		}
		got = proxied.do(http.MethodPost, double, url.Values{"form": {form[1]}, "by": {"mallory"}}, map[string]string{"X-Forwarded-User": "alice", "Origin": proxied.srv.URL})
		if got.code != http.StatusOK || !strings.Contains(got.body, "approved by alice.") {
			t.Errorf("behind the proxy: %s", got)
		}
		if got := open.confirm(triple, "dora", alice); got.code != http.StatusOK || !strings.Contains(got.body, "approved by dora (unverified).") {
			t.Errorf("without the proxy: %s", got)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		ds, err := e.DecidedGates(ctx, "", 0)
		if err != nil || len(ds) != 2 {
			t.Fatalf("DecidedGates = %+v, %v", ds, err)
		}
		for _, g := range ds {
			want := map[string]string{"double": "alice", "triple": "dora (unverified)"}[g.Asset]
			if g.Decision == nil || g.Decision.Decider() != want || g.RunID != run.ID {
				t.Errorf("%s decided by %+v, want %s", g.Asset, g.Decision, want)
			}
		}
	})
}

// TestHourlyGatesByLinks: links address one hour of a daily run each,
// like Approve by Ref; a link of an hour decided by Ref answers who did.
func TestHourlyGatesByLinks(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := hourlyGates()
		cfg := db.config(t)
		cfg.Secret = testSecret
		e := openEngine(t, cfg, Bind(p, nil))
		run, err := e.Materialize(ctx, p, Request{Targets: []string{"rollup"}, Partition: "2024-01-02"})
		if err != nil {
			t.Fatal(err)
		}
		waitForGates(t, e, run.ID, 24)
		s := newLinkServer(t, e.GateHandler())
		hour := func(h int) Ref {
			return Ref{RunID: run.ID, Asset: "check", Partition: flowstone.Partition(fmt.Sprintf("2024-01-02T%02d", h))}
		}
		if err := e.Approve(ctx, hour(23), "erin", ""); err != nil {
			t.Fatal(err)
		}
		late := s.do(http.MethodGet, mustToken(t, e, hour(23), "approve"), nil, nil)
		if late.code != http.StatusConflict || !strings.Contains(late.body, "check (partition 2024-01-02T23) of run "+run.ID+" was already decided by erin (unverified)") {
			t.Errorf("link of an hour decided by Ref: %s", late)
		}
		got := s.confirm(mustToken(t, e, hour(22), "approve"), "dora", nil)
		if got.code != http.StatusOK || !strings.Contains(got.body, "check (partition 2024-01-02T22) of run "+run.ID+": approved by dora (unverified).") {
			t.Fatalf("link of hour 22: %s", got)
		}
		gs, _ := e.Gates(ctx, "")
		for _, g := range gs {
			if g.Partition == "2024-01-02T22" && g.Decision == nil {
				t.Errorf("hour 22 waits undecided after its link")
			}
			if g.Partition != "2024-01-02T22" && g.Partition != "2024-01-02T23" && g.Decision != nil {
				t.Errorf("the link of hour 22 decided %s", g.Partition)
			}
		}
		for h := range 22 {
			if err := e.Approve(ctx, hour(h), "ana", ""); err != nil {
				t.Fatalf("approve %s: %v", hour(h), err)
			}
		}
		res := waitRun(t, e, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		if got, _ := Load[int](ctx, e, "hourly_gates", "rollup", "2024-01-02"); got != 23*24/2 {
			t.Errorf("rollup = %d, want %d", got, 23*24/2)
		}
		ds, _ := e.DecidedGates(ctx, "hourly_gates", 100)
		by := map[flowstone.Partition]string{}
		for _, g := range ds {
			by[g.Partition] = g.Decision.Decider()
		}
		if len(by) != 24 || by["2024-01-02T22"] != "dora (unverified)" || by["2024-01-02T23"] != "erin (unverified)" {
			t.Errorf("decisions: %v", by)
		}
	})
}
