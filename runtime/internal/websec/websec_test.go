package websec

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		hdr    map[string]string
		strict bool
		ok     bool
	}{
		{"nothing, lax", nil, false, true},
		{"nothing, strict", nil, true, false},
		{"same origin", map[string]string{"Origin": "http://example.com"}, true, true},
		{"other origin", map[string]string{"Origin": "https://evil.example"}, false, false},
		{"opaque origin", map[string]string{"Origin": "null"}, true, false},
		{"opaque origin the browser vouches for", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"}, true, true},
		{"cross-site", map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "cross-site"}, false, false},
		{"same-site is not same-origin", map[string]string{"Sec-Fetch-Site": "same-site"}, false, false},
		{"same-host referer", map[string]string{"Referer": "http://example.com/gate?token=x"}, true, true},
		{"other referer", map[string]string{"Referer": "https://evil.example/"}, true, false},
		{"same-origin fetch without origin", map[string]string{"Sec-Fetch-Site": "same-origin"}, true, true},
	} {
		r := httptest.NewRequest("POST", "http://example.com/gate", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		err := SameOrigin(r, c.strict)
		if (err == nil) != c.ok || err != nil && !errors.Is(err, ErrCrossOrigin) {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
	if Equal("", "") || !Equal("a", "a") || Equal("a", "b") {
		t.Error("Equal")
	}
}

func TestParsePublicURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://Ops.Example.com":            "https://ops.example.com/",
		"https://ops.example.com:443/flow":   "https://ops.example.com/flow/",
		"http://ops.example.com:80/":         "http://ops.example.com/",
		"http://127.0.0.1:8090":              "http://127.0.0.1:8090/",
		"HTTPS://[::1]:443/a/b/":             "https://[::1]/a/b/",
		"https://ops.example.com:8443/gates": "https://ops.example.com:8443/gates/",
	} {
		u, err := ParsePublicURL(raw)
		if err != nil || u.String() != want {
			t.Errorf("%q: %v %v, want %s", raw, u, err, want)
		}
	}
	for raw, why := range map[string]string{
		"":                               "empty",
		"ops.example.com":                "no http:// or https:// scheme",
		"ops.example.com:8080":           "no http:// or https:// scheme",
		"/flowstone/":                    "no http:// or https:// scheme",
		"ftp://ops.example.com/":         "the scheme is ftp",
		"https:///x":                     "no host",
		"https://ana:pw@ops.example/":    "user name or password",
		"https://ops.example.com/?a=b":   "it has a query",
		"https://ops.example.com/#top":   "it has a fragment",
		"https://ops.example.com:http2/": "not a URL",
		"https://ops example.com/":       "not a URL",
	} {
		_, err := ParsePublicURL(raw)
		if !errors.Is(err, ErrPublicURL) || !strings.Contains(err.Error(), why) || !strings.Contains(err.Error(), "e.g. https://ops.example.com/") {
			t.Errorf("%q: %v, want %q", raw, err, why)
		}
	}
}

// TestOriginBehindProxy checks a request as a Host-rewriting proxy
// passes it on: users open https://ops.example.com, the server sees
// Host 127.0.0.1:8090.
func TestOriginBehindProxy(t *testing.T) {
	t.Parallel()
	public, err := ParsePublicURL("https://ops.example.com/flowstone/")
	if err != nil {
		t.Fatal(err)
	}
	const from = "https://ops.example.com"
	fwd := map[string]string{"X-Forwarded-Host": "ops.example.com", "X-Forwarded-Proto": "https", "Origin": from}
	for _, c := range []struct {
		name string
		site Site
		hdr  map[string]string
		ok   bool
		why  string // in the error
		hint string // in the error's hint; "" wants none
	}{
		{"no setting", Site{}, map[string]string{"Origin": from}, false, "not from 127.0.0.1:8090 (the request's Host)", ""},
		{"no setting, proxy headers", Site{Setting: "--public-url"}, fwd, false, "not from 127.0.0.1:8090",
			"reverse proxy (X-Forwarded-Host: ops.example.com, X-Forwarded-Proto: https), which changes Host or the scheme: set --public-url to https://ops.example.com/, or have the proxy pass Host on (nginx: proxy_set_header Host $host)"},
		{"no setting, the browser vouches", Site{}, map[string]string{"Origin": from, "Sec-Fetch-Site": "same-origin"}, false, "not from",
			"Sec-Fetch-Site: same-origin), so it came through a reverse proxy, which changes Host or the scheme: set the public URL setting to https://ops.example.com/"},
		{"public URL", Site{Public: public}, map[string]string{"Origin": from}, true, "", ""},
		{"public URL, referer", Site{Public: public}, map[string]string{"Referer": from + "/flowstone/gate?token=x"}, true, "", ""},
		{"public URL, explicit default port", Site{Public: public}, map[string]string{"Origin": from + ":443"}, true, "", ""},
		{"public URL, other scheme", Site{Public: public}, map[string]string{"Origin": "http://ops.example.com"}, false, "not from https://ops.example.com (the public URL https://ops.example.com/flowstone/)", ""},
		{"public URL, other site", Site{Public: public}, map[string]string{"Origin": "https://evil.example"}, false, "it comes from https://evil.example", ""},
		{"public URL, the server's own address", Site{Public: public}, map[string]string{"Origin": "http://127.0.0.1:8090"}, false, "not from https://ops.example.com", ""},
		{"wrong public URL, proxy headers", Site{Public: public}, map[string]string{"Origin": "https://gates.example.com", "X-Forwarded-Host": "gates.example.com"}, false, "",
			"and the public URL https://ops.example.com/flowstone/ is not where users open this server: set the public URL setting to https://gates.example.com/"},
		{"trusted forwarded headers", Site{TrustForwarded: true}, fwd, true, "", ""},
		{"trusted forwarded, last value", Site{TrustForwarded: true}, map[string]string{"X-Forwarded-Host": "evil.example, ops.example.com", "X-Forwarded-Proto": "https", "Origin": from}, true, "", ""},
		{"trusted forwarded, other scheme", Site{TrustForwarded: true}, map[string]string{"X-Forwarded-Host": "ops.example.com", "X-Forwarded-Proto": "http", "Origin": from}, false, "not from http://ops.example.com (X-Forwarded-Host)", "do not name the address users open: have the proxy set them (nginx: proxy_set_header X-Forwarded-Host $host; proxy_set_header X-Forwarded-Proto $scheme), or set the public URL setting to https://ops.example.com/"},
		{"trusted Forwarded", Site{TrustForwarded: true}, map[string]string{"Forwarded": `for=1.2.3.4;host="ops.example.com";proto=https`, "Origin": from}, true, "", ""},
		{"trusted forwarded, other site", Site{TrustForwarded: true}, map[string]string{"X-Forwarded-Host": "ops.example.com", "Origin": "https://evil.example"}, false, "it comes from https://evil.example", ""},
		{"public URL, another site through the proxy", Site{Public: public}, map[string]string{"X-Forwarded-Host": "ops.example.com", "Origin": "https://evil.example"}, false, "it comes from https://evil.example", ""},
		{"public URL, the server's own address through the proxy", Site{Public: public}, map[string]string{"Via": "1.1 nginx", "Origin": "http://127.0.0.1:8090"}, false, "not from https://ops.example.com", ""},
		{"trusted forwarded, none sent", Site{TrustForwarded: true}, map[string]string{"Origin": from, "X-Forwarded-For": "1.2.3.4"}, false, "(the request's Host)", "that names no X-Forwarded-Host or Forwarded host"},
		{"forwarded headers untrusted", Site{}, map[string]string{"X-Forwarded-Host": "127.0.0.1:8090", "Origin": "https://evil.example"}, false, "it comes from https://evil.example", "if users open this server through it, set the public URL setting to the address they open"},
		{"proxy says another host", Site{}, map[string]string{"X-Forwarded-Host": "ops.example.com", "Origin": "https://evil.example"}, false, "it comes from https://evil.example", "if users open this server through it"},
	} {
		r := httptest.NewRequest("POST", "http://127.0.0.1:8090/gate", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		err := c.site.CheckOrigin(r, true)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err == nil {
			continue
		}
		var oe *OriginError
		if !errors.As(err, &oe) || !errors.Is(err, ErrCrossOrigin) || !strings.Contains(oe.Why, c.why) ||
			(c.hint == "") != (oe.Hint == "") || !strings.Contains(oe.Hint, c.hint) {
			t.Errorf("%s: %v\nwant why %q, hint %q", c.name, err, c.why, c.hint)
		}
	}
}

func TestRedirectsUnderThePublicURL(t *testing.T) {
	t.Parallel()
	public, _ := ParsePublicURL("https://ops.example.com/flowstone")
	for loc, want := range map[string]string{
		"/api/graph":         "https://ops.example.com/flowstone/api/graph",
		"/":                  "https://ops.example.com/flowstone/",
		"./":                 "https://ops.example.com/flowstone/",
		"//evil.example":     "//evil.example",
		"https://x.example/": "https://x.example/",
	} {
		rec := httptest.NewRecorder()
		w := Site{Public: public}.Redirects(rec)
		http.Redirect(w, httptest.NewRequest("GET", "/x", nil), loc, http.StatusMovedPermanently)
		if got := rec.Header().Get("Location"); got != want {
			t.Errorf("Location %s: %s, want %s", loc, got, want)
		}
	}
	rec := httptest.NewRecorder()
	if w := (Site{}).Redirects(rec); w != http.ResponseWriter(rec) {
		t.Error("without a public URL the writer is wrapped")
	}
}
