package web_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/internal/testproxy"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web"
)

// proxyWrite posts body to path through p as the page does: signed in as
// ana, with the CSRF token of p's session and the origin users open.
func proxyWrite(t *testing.T, p *testproxy.Proxy, path string, body any) testproxy.Answer {
	t.Helper()
	sess := p.Do(t, http.MethodGet, "/api/session", nil, nil)
	var s struct{ CSRF string }
	if err := json.Unmarshal([]byte(sess.Body), &s); err != nil || s.CSRF == "" {
		t.Fatalf("session through the proxy: %d %s", sess.Code, sess.Body)
	}
	b, _ := json.Marshal(body)
	return p.Do(t, http.MethodPost, path, strings.NewReader(string(b)), map[string]string{
		"Content-Type": "application/json", "Authorization": basic("ana", "s3cret-pass"), "X-CSRF-Token": s.CSRF,
		"Origin": p.Origin(), "Sec-Fetch-Site": "same-origin",
	})
}

// TestWritesBehindProxy approves a gate and cancels a run from the page
// through a reverse proxy that serves it over HTTPS under /flowstone and
// passes it on over HTTP with the page's own Host. Unconfigured, the
// write is refused and the answer and the log say to set the public URL;
// with Options.PublicURL (or TrustForwardedHeaders) it goes through, to
// the gate of the run, asset and partition the page named, and the
// page's redirects stay under the public URL.
//
// It fails while the page compares Origin with the request's Host only.
func TestWritesBehindProxy(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx := t.Context()
		eng := flowstonetest.Open(t, refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}, db)
		start := func(day flowstone.Partition) string {
			run, err := eng.Materialize(ctx, refunds.Pipeline(), runtime.Request{Partition: day})
			if err != nil {
				t.Fatal(err)
			}
			waitGate(t, eng, run.ID)
			return run.ID
		}
		first, second := start("2024-03-01"), start("2024-03-02")
		approve := map[string]any{"run": first, "asset": refunds.AssetRefund, "partition": "2024-03-01", "reason": "via the proxy"}

		logs := &testproxy.Log{}
		h, err := web.New(eng, web.Options{Users: users, Logger: slog.New(slog.NewTextHandler(logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		bare := testproxy.New(t, h, "/flowstone", true)
		got := proxyWrite(t, bare, "/api/gates/approve", approve)
		if got.Code != http.StatusForbidden || !strings.Contains(got.Body, "It came through a reverse proxy (X-Forwarded-Host: ") ||
			!strings.Contains(got.Body, "set serve --public-url (web.Options.PublicURL in Go) to "+bare.Origin()+"/") {
			t.Errorf("unconfigured, through the proxy: %d %s", got.Code, got.Body)
		}
		if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "write refused behind a reverse proxy") ||
			!strings.Contains(l, "user=ana") || !strings.Contains(l, "--public-url") {
			t.Errorf("the log says nothing of the proxy:\n%s", l)
		}
		if gates, _ := eng.Gates(ctx, ""); len(gates) != 2 {
			t.Fatalf("a refused write decided: %+v", gates)
		}

		p := testproxy.New(t, nil, "/flowstone", true)
		h, err = web.New(eng, web.Options{Users: users, PublicURL: p.Public()})
		if err != nil {
			t.Fatal(err)
		}
		p.Handle(h)
		if got := proxyWrite(t, p, "/api/gates/approve", approve); got.Code != http.StatusOK || !strings.Contains(got.Body, `"verified":true`) {
			t.Fatalf("approve through the proxy: %d %s", got.Code, got.Body)
		}
		decided, err := eng.DecidedGates(ctx, "", 10)
		if err != nil || len(decided) != 1 || decided[0].Ref != (runtime.Ref{RunID: first, Asset: refunds.AssetRefund, Partition: "2024-03-01"}) ||
			decided[0].Decision.By != "ana" || decided[0].Decision.Reason != "via the proxy" {
			t.Errorf("decided %+v (%v), want refund of %s at 2024-03-01 by ana", decided, err, first)
		}
		// Another site is refused all the same, with nothing to configure.
		evil := p.Do(t, http.MethodPost, "/api/runs/"+second+"/cancel", nil, map[string]string{
			"Authorization": basic("ana", "s3cret-pass"), "Origin": "https://evil.example"})
		if evil.Code != http.StatusForbidden || !strings.Contains(evil.Body, "it comes from https://evil.example, not from "+p.Origin()) ||
			strings.Contains(evil.Body, "--public-url") {
			t.Errorf("another site through the proxy: %d %s", evil.Code, evil.Body)
		}
		// A redirect of the page's own points under the public URL.
		if r := p.Do(t, http.MethodGet, "/api//graph", nil, nil); r.Code/100 != 3 || r.Header.Get("Location") != p.Public()+"api/graph" {
			t.Errorf("redirect through the proxy: %d Location %q, want %sapi/graph", r.Code, r.Header.Get("Location"), p.Public())
		}

		trusted := testproxy.New(t, nil, "/flowstone", true)
		h, err = web.New(eng, web.Options{Users: users, TrustForwardedHeaders: true})
		if err != nil {
			t.Fatal(err)
		}
		trusted.Handle(h)
		if got := proxyWrite(t, trusted, "/api/runs/"+second+"/cancel", nil); got.Code != http.StatusOK {
			t.Errorf("cancel through the trusted proxy: %d %s", got.Code, got.Body)
		}
		if res, err := eng.Run(ctx, second); err != nil || res.Status != runtime.RunCancelled {
			t.Errorf("run %s after cancel: %s %v", second, res.Status, err)
		}

		_, err = web.New(eng, web.Options{PublicURL: "ops.example.com/flowstone"})
		if !errors.Is(err, runtime.ErrInvalidPublicURL) || !strings.Contains(err.Error(), "no http:// or https:// scheme") {
			t.Errorf("a bad public URL: %v", err)
		}
	})
}
