package web_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/internal/testproxy"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web"
	"github.com/flowstone-go/flowstone/runtime/web/riverview"
	"github.com/flowstone-go/flowstone/strategy"
)

// screenshots, when set, is where TestBrowser saves a PNG of each page
// (docs/ui.md shows them): go test ./runtime/web -run TestBrowser -screenshots ../../docs/ui
var screenshots = flag.String("screenshots", "", "directory to save the page screenshots in")

// chromium finds the browser: the Debian package's chromium, or another
// Chromium or Chrome on PATH. CI installs it (.ci/run); elsewhere a missing
// browser skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH; CI requires the browser test (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: install the chromium package to run the browser test")
	return ""
}

// browser starts a headless Chromium for the test and returns a context of
// its first tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		// The reverse proxy of TestBrowserBehindProxy serves HTTPS with
		// a certificate of its own.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

// shot saves the tab's viewport as name.png when -screenshots is set.
func shot(t *testing.T, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if *screenshots == "" {
			return nil
		}
		png, err := chromedp.CaptureScreenshot()(ctx, tg)
		if err != nil {
			return err
		}
		t.Logf("screenshot %s.png", name)
		return os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644)
	})
}

// TestBrowser drives the page in headless Chromium: the refunds example's
// graph, an asset's partitions, a run followed live to success while its
// gate is approved through the page in another tab.
func TestBrowser(t *testing.T) {
	t.Parallel()
	tab := browser(t)
	eng := flowstonetest.Open(t, refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}, flowstonetest.SQLite())
	river, err := riverview.New(t.Context(), eng, "/river", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h, err := web.New(eng, web.Options{Users: map[string]string{"ana": "pw-for-ana"}, River: river})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	run, err := eng.Materialize(t.Context(), refunds.Pipeline(), runtime.Request{Partition: day})
	if err != nil {
		t.Fatal(err)
	}
	waitGate(t, eng, run.ID)

	// The graph of the example: every asset, kinds marked; a click opens
	// the asset with its partitions.
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`g.node[data-asset="triage"]`),
		shot(t, "graph"),
		chromedp.SendKeys(`#search`, "review"),
		chromedp.WaitVisible(`g.node.hit[data-asset="manual_review"]`),
		chromedp.Click(`g.node[data-asset="triage"]`),
		chromedp.WaitVisible(`#partitions a[data-partition="`+string(day)+`"].st-succeeded`),
		chromedp.WaitVisible(`#preview`),
		shot(t, "asset"),
	)
	if err != nil {
		t.Fatalf("graph and asset pages: %v", err)
	}
	if kinds, err := chromedp.Run(tab, chromedp.TextContent(`#main h1`)); err != nil || !strings.Contains(kinds, "triage") {
		t.Errorf("the asset page is titled %q (%v), want triage's", kinds, err)
	}
	if kinds, err := chromedp.Run(tab, chromedp.TextContent(`dl.props`)); err != nil || !strings.Contains(kinds, "router") {
		t.Errorf("triage's definition reads %q (%v), want kind router", kinds, err)
	}

	// Tab one follows the run, waiting at its gate; tab two approves it.
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/#/run/"+run.ID),
		chromedp.WaitVisible(`#run-status .st-running`),
		chromedp.WaitVisible(`#nodes tr[data-asset="refund"] .st-waiting`),
		chromedp.WaitVisible(`#gantt rect.bar`),
		shot(t, "run-waiting"),
	)
	if err != nil {
		t.Fatalf("run page: %v", err)
	}
	gates, cancelGates := chromedp.NewContext(tab)
	defer cancelGates()
	err = chromedp.Do(gates,
		chromedp.Navigate(srv.URL+"/#/gates"),
		chromedp.WaitVisible(`#signin`),
		chromedp.SendKeys(`#signin input[name=user]`, "ana"),
		chromedp.SendKeys(`#signin input[name=password]`, "pw-for-ana"),
		chromedp.Click(`#signin button`),
		chromedp.WaitVisible(`#user`),
		chromedp.WaitVisible(`#gates tr[data-run="`+run.ID+`"] button.approve`),
		chromedp.SendKeys(`#gates tr[data-run="`+run.ID+`"] input.reason`, "receipts checked"),
		shot(t, "gates"),
		chromedp.Click(`#gates tr[data-run="`+run.ID+`"] button.approve`),
		chromedp.WaitVisible(`#message.muted`),
	)
	if err != nil {
		t.Fatalf("gates page: %v", err)
	}
	if msg, err := chromedp.Run(gates, chromedp.Text(`#message`)); err != nil || !strings.Contains(msg, "ana approved refund") {
		t.Errorf("after approving, the page says %q (%v)", msg, err)
	}
	// The decision is listed with who made it, signed in.
	if err := chromedp.Do(gates, chromedp.WaitVisible(`#decided tr[data-run="`+run.ID+`"]`)); err != nil {
		t.Fatalf("decided gates: %v", err)
	}
	if row, err := chromedp.Run(gates, chromedp.Text(`#decided tr[data-run="`+run.ID+`"]`)); err != nil || !strings.Contains(row, "approved") ||
		!strings.Contains(row, "ana") || strings.Contains(row, "unverified") || !strings.Contains(row, "receipts checked") {
		t.Errorf("the decided row reads %q (%v)", row, err)
	}
	err = chromedp.Do(tab,
		chromedp.WaitVisible(`#run-status .st-succeeded`),
		chromedp.WaitVisible(`#nodes tr[data-asset="payout"] .st-succeeded`),
		shot(t, "run"),
	)
	if err != nil {
		t.Fatalf("the run page never showed the run succeed: %v", err)
	}
	res, err := eng.Run(t.Context(), run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != runtime.RunSucceeded {
		t.Errorf("run %s, want succeeded", res.Status)
	}

	// The runs listing filters, and River's view is mounted.
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/#/runs?status=succeeded"),
		chromedp.WaitVisible(`#runs a[href="#/run/`+run.ID+`"]`),
		shot(t, "runs"),
		chromedp.Navigate(srv.URL+"/river/jobs?state=completed"),
	)
	if err == nil {
		// River's view lists the run's completed jobs.
		_, err = chromedp.Run(tab, chromedp.Poll[bool](`document.body.innerText.includes("flowstone.refunds")`))
	}
	if err == nil {
		err = chromedp.Do(tab, shot(t, "river"))
	}
	if err != nil {
		t.Fatalf("runs and River pages: %v", err)
	}
}

// TestBrowserLargeGraph lays out a pipeline of 500 assets in 25 groups and
// searches it: the graph must stay usable at that size.
func TestBrowserLargeGraph(t *testing.T) {
	t.Parallel()
	tab := browser(t)
	const layers, width = 50, 10
	var assets []runtime.AssetDef
	noop := func(context.Context, *runtime.Inputs) (any, error) { return 1, nil }
	for l := range layers {
		for i := range width {
			a := runtime.AssetDef{Key: fmt.Sprintf("a_%02d_%d", l, i), Kind: "standard", Strategy: strategy.Standard{}, HasValue: true,
				CodeVersion: "v1", Group: fmt.Sprintf("g%02d", l/2), Run: noop}
			if l > 0 {
				a.Deps = []runtime.Dep{{Asset: fmt.Sprintf("a_%02d_%d", l-1, i), Kind: runtime.DepValue},
					{Asset: fmt.Sprintf("a_%02d_%d", l-1, (i+1)%width), Kind: runtime.DepOutcome}}
			}
			assets = append(assets, a)
		}
	}
	p := runtime.NewPipeline(runtime.PipelineDef{Name: "large", Assets: assets})
	eng := flowstonetest.Open(t, p, nil, flowstonetest.SQLite())
	h, err := web.New(eng, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	start := time.Now()
	err = chromedp.Do(tab,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(`g.node[data-asset="a_49_9"]`),
	)
	if err != nil {
		t.Fatalf("graph of 500 assets: %v", err)
	}
	ms, _ := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("graph").dataset.layoutMs`))
	t.Logf("500 assets laid out and drawn in %s (layout %s ms)", time.Since(start).Round(time.Millisecond), ms)
	n, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("g.node").length`))
	if err != nil || n != layers*width {
		t.Fatalf("%d assets drawn (%v), want %d", n, err, layers*width)
	}
	err = chromedp.Do(tab,
		chromedp.SendKeys(`#search`, "a_17_3\n"),
		chromedp.WaitVisible(`g.node.hit[data-asset="a_17_3"]`),
		shot(t, "graph-500"),
	)
	if err != nil {
		t.Fatalf("search the large graph: %v", err)
	}
	if hits, err := chromedp.Run(tab, chromedp.Evaluate[int](`document.querySelectorAll("g.node.hit").length`)); err != nil || hits != 1 {
		t.Errorf("searching a_17_3 highlights %d assets (%v), want 1", hits, err)
	}
}

// TestBrowserBehindProxy decides gates in headless Chromium through
// reverse proxies that serve HTTPS and pass requests on over HTTP with
// the server's own Host: a gate approved on the page (under /flowstone,
// with X-Forwarded-* headers), and a signed link's page behind a proxy
// that sends none, as nginx does by default. Unconfigured, the link's
// page refuses and says which --public-url to set, as the browser itself
// says the form is its page's (Sec-Fetch-Site); with the public URL the
// same browser's decisions go through, each to its own run and partition.
//
// It fails while the origin check compares the browser's Origin with the
// request's Host only.
func TestBrowserBehindProxy(t *testing.T) {
	t.Parallel()
	tab := browser(t)
	ctx := t.Context()
	eng := flowstonetest.Open(t, refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}, flowstonetest.SQLite())
	start := func(day flowstone.Partition) string {
		run, err := eng.Materialize(ctx, refunds.Pipeline(), runtime.Request{Partition: day})
		if err != nil {
			t.Fatal(err)
		}
		waitGate(t, eng, run.ID)
		return run.ID
	}
	first, second := start("2024-03-01"), start("2024-03-02")

	page := testproxy.New(t, nil, "/flowstone", true)
	h, err := web.New(eng, web.Options{Users: map[string]string{"ana": "pw-for-ana"}, PublicURL: page.Public()})
	if err != nil {
		t.Fatal(err)
	}
	page.Handle(h)
	err = chromedp.Do(tab,
		chromedp.Navigate(page.Public()+"#/gates"),
		chromedp.WaitVisible(`#signin`),
		chromedp.SendKeys(`#signin input[name=user]`, "ana"),
		chromedp.SendKeys(`#signin input[name=password]`, "pw-for-ana"),
		chromedp.Click(`#signin button`),
		chromedp.WaitVisible(`#user`),
		chromedp.WaitVisible(`#gates tr[data-run="`+first+`"] button.approve`),
		chromedp.SendKeys(`#gates tr[data-run="`+first+`"] input.reason`, "through the proxy"),
		chromedp.Click(`#gates tr[data-run="`+first+`"] button.approve`),
		chromedp.WaitVisible(`#message.muted`),
	)
	if err != nil {
		t.Fatalf("the gates page through the proxy: %v", err)
	}
	if msg, err := chromedp.Run(tab, chromedp.Text(`#message`)); err != nil || !strings.Contains(msg, "ana approved refund") {
		t.Errorf("after approving through the proxy, the page says %q (%v)", msg, err)
	}

	// The signed link's page: refused unconfigured, then decided.
	gateMux := func(opts ...runtime.GateOption) http.Handler {
		m := http.NewServeMux()
		m.Handle("/gate", eng.GateHandler(opts...))
		return m
	}
	ref := runtime.Ref{RunID: second, Asset: refunds.AssetRefund, Partition: "2024-03-02"}
	decide := func(link string) string {
		t.Helper()
		// The answer is a page of its own, without the form.
		err := chromedp.Do(tab, chromedp.Navigate(link), chromedp.WaitVisible(`input[name=by]`),
			chromedp.SendKeys(`input[name=by]`, "dora"), chromedp.Click(`button[type=submit]`),
			chromedp.WaitNotPresent(`form`), chromedp.WaitVisible(`#message`))
		var text string
		if err == nil {
			text, err = chromedp.Run(tab, chromedp.Text(`body`))
		}
		if err != nil {
			t.Fatalf("the link's page: %v", err)
		}
		return text
	}
	bare := testproxy.New(t, gateMux(), "", false)
	link, err := eng.GateLink(bare.Public()+"gate", ref, "reject", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if text := decide(link); !strings.Contains(text, "Refused") || !strings.Contains(text, "Sec-Fetch-Site: same-origin") ||
		!strings.Contains(text, "set serve-gates --public-url (runtime.GatePublicURL in Go) to "+bare.Origin()+"/") {
		t.Errorf("the unconfigured link's page says:\n%s", text)
	}
	links := testproxy.New(t, nil, "", false)
	links.Handle(gateMux(runtime.GatePublicURL(links.Public())))
	link, _ = eng.GateLink(links.Public()+"gate", ref, "reject", time.Hour)
	if text := decide(link); !strings.Contains(text, "Done") || !strings.Contains(text, "rejected by dora (unverified)") {
		t.Errorf("the link's page through the configured proxy says:\n%s", text)
	}

	decided, err := eng.DecidedGates(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[runtime.Ref]string{}
	for _, d := range decided {
		got[d.Ref] = d.Decision.Outcome() + " " + d.Decision.Decider()
	}
	want := map[runtime.Ref]string{
		{RunID: first, Asset: refunds.AssetRefund, Partition: "2024-03-01"}: "approved ana",
		ref: "rejected dora (unverified)",
	}
	if len(got) != len(want) || got[ref] != want[ref] || got[runtime.Ref{RunID: first, Asset: refunds.AssetRefund, Partition: "2024-03-01"}] != "approved ana" {
		t.Errorf("decided %v, want %v", got, want)
	}
}
