package runtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/testproxy"
)

// proxiedGates is a run with two gates (double and triple) and a run with
// 24 hourly gates under a daily rollup, on one engine whose log the test
// reads.
type proxiedGates struct {
	e            *Engine
	log          *testproxy.Log
	twoGates     string
	hourly       string
	hourlyTarget string
}

func openProxiedGates(t *testing.T, db testDB) proxiedGates {
	ctx := context.Background()
	times := func(k int) RunFunc {
		return func(ctx context.Context, in *Inputs) (any, error) {
			n, err := Input[int](ctx, in, "amount")
			return n * k, err
		}
	}
	two := NewPipeline(PipelineDef{Name: "twogates", Assets: []AssetDef{
		def("amount", func(ctx context.Context, in *Inputs) (any, error) { return 21, nil }),
		gate("double", times(2), on("amount")),
		gate("triple", times(3), on("amount")),
	}})
	check := gate("check", func(ctx context.Context, in *Inputs) (any, error) { return 1, nil })
	check.Partitions = flowstone.Hourly("2024-01-01T00")
	rollup := def("rollup", func(ctx context.Context, in *Inputs) (any, error) {
		hs, err := InputPartitions[int](ctx, in, "check")
		return len(hs), err
	}, Dep{Asset: "check", Kind: DepPartitions})
	rollup.Partitions = flowstone.Daily("2024-01-01")
	hourly := NewPipeline(PipelineDef{Name: "hourly", Assets: []AssetDef{check, rollup}})

	logs := &testproxy.Log{}
	cfg := db.config(t)
	cfg.Secret = testSecret
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	e := openEngine(t, cfg, Bind(two, nil), Bind(hourly, nil))
	r1, err := e.Materialize(ctx, two, Request{})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Materialize(ctx, hourly, Request{Targets: []string{"rollup"}, Partition: "2024-01-02"})
	if err != nil {
		t.Fatal(err)
	}
	waitForGates(t, e, r1.ID, 2)
	waitForGates(t, e, r2.ID, 24)
	return proxiedGates{e: e, log: logs, twoGates: r1.ID, hourly: r2.ID}
}

// confirmThrough opens link through proxy p and posts its form from the
// page's origin, as a browser does, naming by.
func confirmThrough(t *testing.T, p *testproxy.Proxy, link, by string) testproxy.Answer {
	t.Helper()
	page := p.Do(t, http.MethodGet, link, nil, nil)
	m := formTokenField.FindStringSubmatch(page.Body)
	if page.Code != http.StatusOK || m == nil {
		return page
	}
	form := url.Values{"form": {m[1]}, "by": {by}, "reason": {"through the proxy"}}
	return p.Do(t, http.MethodPost, link, strings.NewReader(form.Encode()), map[string]string{
		"Content-Type": "application/x-www-form-urlencoded", "Origin": p.Origin(),
	})
}

// TestGateLinksBehindProxy decides gates through a reverse proxy that
// serves the links over HTTPS under /approvals and passes them to the
// handler over HTTP with the handler's own Host. Without configuration
// every decision is refused, and the refusal and the log say to set the
// public URL; with GatePublicURL (or TrustForwardedHeaders) the links
// made for the public URL decide, each the gate of its own run, asset and
// partition.
//
// It fails while GateHandler compares Origin with the request's Host
// only: the proxied decisions answer 403.
func TestGateLinksBehindProxy(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		g := openProxiedGates(t, db)
		e := g.e
		mux := func(opts ...GateOption) http.Handler {
			m := http.NewServeMux()
			m.Handle("/gate", e.GateHandler(opts...))
			return m
		}
		ref := func(run, asset, part string) Ref {
			return Ref{RunID: run, Asset: asset, Partition: flowstone.Partition(part)}
		}

		// Unconfigured: refused, loudly, and nothing decided.
		bare := testproxy.New(t, mux(), "/approvals", true)
		link, err := e.GateLink(bare.Public()+"gate", ref(g.twoGates, "double", ""), "approve", time.Hour)
		if err != nil || !strings.HasPrefix(link, bare.Public()+"gate?token=") {
			t.Fatalf("GateLink: %s %v", link, err)
		}
		got := confirmThrough(t, bare, link, "ana")
		if got.Code != http.StatusForbidden || !strings.Contains(got.Body, "It came through a reverse proxy (X-Forwarded-Host: ") ||
			!strings.Contains(got.Body, "set serve-gates --public-url (runtime.GatePublicURL in Go) to "+bare.Origin()+"/") ||
			!strings.Contains(got.Body, "Nothing changed") {
			t.Errorf("unconfigured, through the proxy: %d %s", got.Code, got.Body)
		}
		if l := g.log.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "decision refused behind a reverse proxy") ||
			!strings.Contains(l, "run="+g.twoGates) || !strings.Contains(l, "asset=double") || !strings.Contains(l, "--public-url") {
			t.Errorf("the log says nothing of the proxy:\n%s", l)
		}
		// Without X-Forwarded-* the browser's Sec-Fetch-Site still tells.
		plain := testproxy.New(t, mux(), "", false)
		page := plain.Do(t, http.MethodGet, "/gate?token="+mustToken(t, e, ref(g.twoGates, "double", ""), "approve"), nil, nil)
		m := formTokenField.FindStringSubmatch(page.Body)
		if m == nil {
			t.Fatalf("GET through the plain proxy: %d %s", page.Code, page.Body)
		}
		got = plain.Do(t, http.MethodPost, "/gate?token="+mustToken(t, e, ref(g.twoGates, "double", ""), "approve"), strings.NewReader(url.Values{"form": {m[1]}, "by": {"ana"}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": plain.Origin(), "Sec-Fetch-Site": "same-origin"})
		if got.Code != http.StatusForbidden || !strings.Contains(got.Body, "Sec-Fetch-Site: same-origin") || !strings.Contains(got.Body, "proxy_set_header Host $host") {
			t.Errorf("unconfigured, no forwarded headers: %d %s", got.Code, got.Body)
		}
		if gs, _ := e.DecidedGates(ctx, "", 10); len(gs) != 0 {
			t.Fatalf("a refused decision was recorded: %+v", gs)
		}

		// With the public URL: approve one gate, reject the other, decide
		// one hour of the partitioned run.
		p := testproxy.New(t, nil, "/approvals", true)
		p.Handle(mux(GatePublicURL(p.Public())))
		base := p.Public() + "gate"
		links := []struct {
			ref    Ref
			action string
			by     string
		}{
			{ref(g.twoGates, "double", ""), "approve", "ana"},
			{ref(g.twoGates, "triple", ""), "reject", "bob"},
			{ref(g.hourly, "check", "2024-01-02T03"), "approve", "carl"},
			{ref(g.hourly, "check", "2024-01-02T04"), "reject", "dora"},
		}
		for _, l := range links {
			link, err := e.GateLink(base, l.ref, l.action, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got := confirmThrough(t, p, link, l.by)
			if got.Code != http.StatusOK || !strings.Contains(got.Body, pastTense(l.action)+" by "+l.by+" (unverified).") {
				t.Errorf("%s %s through the proxy: %d %s", l.action, l.ref, got.Code, got.Body)
			}
			if again := confirmThrough(t, p, link, "eve"); again.Code != http.StatusConflict {
				t.Errorf("%s used twice: %d %s", l.ref, again.Code, again.Body)
			}
		}
		// Posted from another site, the proxied link still refuses.
		evil := p.Do(t, http.MethodPost, base+"?token="+mustToken(t, e, ref(g.hourly, "check", "2024-01-02T05"), "approve"), strings.NewReader("by=eve"),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://evil.example"})
		if evil.Code != http.StatusForbidden || !strings.Contains(evil.Body, "it comes from https://evil.example, not from "+p.Origin()) {
			t.Errorf("another site's POST through the proxy: %d %s", evil.Code, evil.Body)
		}

		// Trusting the proxy's headers works as well.
		trusted := testproxy.New(t, mux(TrustForwardedHeaders()), "/approvals", true)
		link, _ = e.GateLink(trusted.Public()+"gate", ref(g.hourly, "check", "2024-01-02T06"), "approve", time.Hour)
		if got := confirmThrough(t, trusted, link, "erin"); got.Code != http.StatusOK {
			t.Errorf("trusting forwarded headers: %d %s", got.Code, got.Body)
		}

		// Each decision landed on its own run, asset and partition.
		want := map[Ref]string{}
		for _, l := range links {
			want[l.ref] = pastTense(l.action) + " " + l.by
		}
		want[ref(g.hourly, "check", "2024-01-02T06")] = "approved erin"
		decided, err := e.DecidedGates(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		gotDecided := map[Ref]string{}
		for _, d := range decided {
			gotDecided[d.Ref] = pastTense(d.Decision.Action) + " " + d.Decision.By
		}
		if len(gotDecided) != len(want) {
			t.Errorf("decided %v, want %v", gotDecided, want)
		}
		for r, w := range want {
			if gotDecided[r] != w {
				t.Errorf("%s: %q, want %q", r, gotDecided[r], w)
			}
		}
		if gs := waitForGates(t, e, g.hourly, 21); len(gs) != 21 {
			t.Errorf("%d hourly gates still wait, want 21", len(gs))
		}
		res, err := e.Run(ctx, g.twoGates)
		if err != nil {
			t.Fatal(err)
		}
		if res.Assets["triple"].Status == StatusWaiting {
			t.Errorf("triple still waits after its rejection")
		}
	})
}

// TestGateLinkAndPublicURLErrors checks what GateLink, ParsePublicURL and
// GatePublicURL refuse.
func TestGateLinkAndPublicURLErrors(t *testing.T) {
	t.Parallel()
	cfg := databases(t)[0].config(t)
	cfg.Secret = testSecret
	p := gatePipeline(0, "")
	e := openEngine(t, cfg, Bind(p, nil))
	for _, base := range []string{"", "gates.example.com/gate", "ftp://gates.example.com/gate", "https:///gate", "https://gates.example.com/gate#x"} {
		if _, err := e.GateLink(base, Ref{RunID: "r", Asset: "refund"}, "approve", time.Hour); !errors.Is(err, ErrInvalidPublicURL) {
			t.Errorf("GateLink(%q): %v, want ErrInvalidPublicURL", base, err)
		}
	}
	if _, err := e.GateLink("https://gates.example.com/gate", Ref{RunID: "r", Asset: "refund"}, "maybe", time.Hour); err == nil {
		t.Error("GateLink with a bad action")
	}
	if _, err := ParsePublicURL("ops.example.com"); !errors.Is(err, ErrInvalidPublicURL) || !strings.Contains(err.Error(), "no http:// or https:// scheme") {
		t.Errorf("ParsePublicURL: %v", err)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(error).Error(), "GatePublicURL: invalid public URL \"ops.example.com\"") {
			t.Errorf("GateHandler with a bad GatePublicURL: %v", r)
		}
	}()
	e.GateHandler(GatePublicURL("ops.example.com"))
	t.Error("GateHandler took a bad GatePublicURL")
}
