package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testproxy"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

var listeningRe = regexp.MustCompile(`\(listening on (127\.0\.0\.1:\d+)\)`)

// serveBehind runs a serving command (serve or serve-gates with
// --public-url front's) until the test ends, points front at it, and
// returns its output so far.
func serveBehind(t *testing.T, ctx context.Context, app cli.App, front *testproxy.Proxy, argv []string) string {
	t.Helper()
	ctx, stop := context.WithCancel(ctx)
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, app, argv, &out, &errOut) }()
	t.Cleanup(func() {
		stop()
		if code := <-done; code != 0 || !strings.Contains(out.String(), "stopped serving") {
			t.Errorf("%s: exit %d\n%s%s", argv[len(argv)-5], code, out.String(), errOut.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := listeningRe.FindStringSubmatch(out.String()); m != nil {
			front.To(t, "http://"+m[1])
			return out.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("never served: %s %s", out.String(), errOut.String())
		}
	}
}

// TestDecideBehindProxy decides the hourly gates of one run every way
// there is while serve and serve-gates sit behind reverse proxies that
// serve them over HTTPS under a path and pass them on over HTTP with
// their own Host: hour 0 with approve, hour 1 on the page, hour 2 by the
// JSON API's bearer token, hour 3 by a signed link gate-link made for
// the public URL, hour 4 by a link that rejects. Each decision lands on
// its own hour, and the other hours still wait.
//
// It fails while serve and serve-gates have no --public-url: behind such
// a proxy the page and the link refuse every decision.
func TestDecideBehindProxy(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		app, db := hourlyGatedApp(), withSecret(db)
		r := invoke(ctx, app, args(db, "materialize", "--detach", "--partition", "2024-01-02", "rollup")...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)
		startWorker(t, ctx, app, db)

		gates := testproxy.NewFront(t, "/approvals", true)
		out := serveBehind(t, ctx, app, gates, args(db, "serve-gates", "--addr", "127.0.0.1:0", "--public-url", gates.Public()))
		base := gates.Public() + "gate"
		if !strings.Contains(out, "serving gate links at "+base+" (listening on ") || !strings.Contains(out, "gate-link RUN_ID ASSET --base-url "+base+"\n") {
			t.Errorf("serve-gates says nothing of its public URL:\n%s", out)
		}
		page := testproxy.NewFront(t, "/flowstone", true)
		out = serveBehind(t, ctx, app, page, args(db, "serve", "--user", "ana:pw", "--token", "api-token", "--addr", "127.0.0.1:0", "--public-url", page.Public()))
		if !strings.Contains(out, "serving the FlowStone page for ") || !strings.Contains(out, " at "+page.Public()+" (listening on ") {
			t.Errorf("serve says nothing of its public URL:\n%s", out)
		}

		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			r = invoke(ctx, app, args(db, "gates")...)
			if strings.Count(r.stdout, id) == 24 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("24 gates never waited: %s", r)
			}
		}

		// Hour 0 from the command line.
		if r := invoke(ctx, app, args(db, "approve", id, "check", "--partition", "2024-01-02T00", "--by", "carl")...); r.code != 0 {
			t.Fatalf("approve: %s", r)
		}
		// Hour 1 on the page, signed in, through its proxy.
		sess := page.Do(t, http.MethodGet, "/api/session", nil, nil)
		var s struct{ CSRF string }
		if err := json.Unmarshal([]byte(sess.Body), &s); err != nil {
			t.Fatalf("session: %d %s", sess.Code, sess.Body)
		}
		write := func(path, body string, hdr map[string]string) testproxy.Answer {
			h := map[string]string{"Content-Type": "application/json"}
			for k, v := range hdr {
				h[k] = v
			}
			return page.Do(t, http.MethodPost, path, strings.NewReader(body), h)
		}
		if got := write("/api/gates/reject", `{"run":"`+id+`","asset":"check","partition":"2024-01-02T01","reason":"page"}`, map[string]string{
			"Authorization": "Basic YW5hOnB3", "X-CSRF-Token": s.CSRF, "Origin": page.Origin(), "Sec-Fetch-Site": "same-origin",
		}); got.Code != http.StatusOK || !strings.Contains(got.Body, `"verified":true`) {
			t.Fatalf("reject on the page through the proxy: %d %s", got.Code, got.Body)
		}
		// Hour 2 by the JSON API, with the bearer token.
		if got := write("/api/gates/approve", `{"run":"`+id+`","asset":"check","partition":"2024-01-02T02","by":"billing-bot"}`, map[string]string{
			"Authorization": "Bearer api-token",
		}); got.Code != http.StatusOK {
			t.Fatalf("approve by the API through the proxy: %d %s", got.Code, got.Body)
		}
		// Hours 3 and 4 by signed links made for the public URL.
		for _, l := range []struct{ hour, action, by, done string }{{"03", "approve", "dora", "approved"}, {"04", "reject", "erin", "rejected"}} {
			r := invoke(ctx, app, args(db, "gate-link", id, "check", "--partition", "2024-01-02T"+l.hour, "--action", l.action, "--base-url", base)...)
			link := strings.TrimSpace(r.stdout)
			if r.code != 0 || !strings.HasPrefix(link, base+"?token=") {
				t.Fatalf("gate-link: %s", r)
			}
			form := gates.Do(t, http.MethodGet, link, nil, nil)
			m := formToken.FindStringSubmatch(form.Body)
			if form.Code != http.StatusOK || m == nil {
				t.Fatalf("open the link through the proxy: %d %s", form.Code, form.Body)
			}
			got := gates.Do(t, http.MethodPost, link, strings.NewReader(url.Values{"form": {m[1]}, "by": {l.by}, "reason": {"link"}}.Encode()),
				map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": gates.Origin()})
			if got.Code != http.StatusOK || !strings.Contains(got.Body, "check (partition 2024-01-02T"+l.hour+") of run "+id+": "+l.done+" by "+l.by+" (unverified).") {
				t.Fatalf("%s by the link through the proxy: %d %s", l.action, got.Code, got.Body)
			}
		}

		r = invoke(ctx, app, args(db, "gates", "--decided")...)
		wantLine(t, r, id+` check 2024-01-02T00 approved carl \(unverified\) \S+ \S+ -`)
		wantLine(t, r, id+` check 2024-01-02T01 rejected ana \S+ \S+ page`)
		wantLine(t, r, id+` check 2024-01-02T02 approved billing-bot \(unverified\) \S+ \S+ -`)
		wantLine(t, r, id+` check 2024-01-02T03 approved dora \(unverified\) \S+ \S+ link`)
		wantLine(t, r, id+` check 2024-01-02T04 rejected erin \(unverified\) \S+ \S+ link`)
		if n := strings.Count(r.stdout, id); n != 5 {
			t.Errorf("%d decisions, want 5:\n%s", n, r)
		}
		// Workers apply the decisions; the other 19 hours wait on.
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			r = invoke(ctx, app, args(db, "gates")...)
			if strings.Count(r.stdout, id) == 19 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("want 19 hours waiting, without hours 0-4:\n%s", r)
			}
		}
		for h := range 5 {
			if strings.Contains(r.stdout, fmt.Sprintf("2024-01-02T%02d", h)) {
				t.Errorf("hour %d waits after its decision:\n%s", h, r)
			}
		}
	})
}

// TestPublicURLFlags checks --public-url's and
// --trust-forwarded-headers's usage errors: exit 2, before anything is
// opened or served.
func TestPublicURLFlags(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	app, db := gatedApp(), withSecret(databases(t)[0].flags(t))
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"serve", "--public-url", "ops.example.com"}, `gated: --public-url: invalid public URL "ops.example.com": no http:// or https:// scheme; want the address users open, e.g. https://ops.example.com/`},
		{[]string{"serve-gates", "--public-url", "https://ops.example.com/?x=1"}, `gated: --public-url: invalid public URL "https://ops.example.com/?x=1": it has a query`},
		{[]string{"serve-gates", "--public-url", ""}, `gated: --public-url: invalid public URL "": empty`},
		{[]string{"serve", "--public-url", "ftp://ops.example.com/"}, `the scheme is ftp, not http or https`},
		{[]string{"serve", "--public-url", "https://ops.example.com/", "--trust-forwarded-headers"}, "gated: --public-url and --trust-forwarded-headers: give one"},
		{[]string{"serve-gates", "--public-url", "https://ops.example.com/", "--trust-forwarded-headers"}, "gated: --public-url and --trust-forwarded-headers: give one"},
	} {
		r := invoke(ctx, app, args(db, append(c.argv, "--addr", "127.0.0.1:0")...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stdout, "serving") {
			t.Errorf("%v: %s\nwant exit 2 with %q", c.argv, r, c.want)
		}
	}
}
