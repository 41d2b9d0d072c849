// Package testproxy is a reverse proxy for tests, in front of a handler as
// a production proxy often is: users open it over HTTPS under a path
// prefix, and it passes requests on over plain HTTP, without the prefix
// and with the backend's own Host (nginx without proxy_set_header Host,
// many ingress controllers, TLS termination). So the backend never sees
// the scheme, host or path users open.
package testproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a TLS front and the plain-HTTP backend it forwards to.
type Proxy struct {
	// Front is the proxy users reach, over HTTPS.
	Front *httptest.Server
	// Backend serves the handler, over HTTP.
	Backend *httptest.Server
	// Prefix is the path the front serves the backend under, e.g.
	// "/flowstone"; "" serves it at the root.
	Prefix  string
	client  *http.Client
	handler atomic.Pointer[http.Handler]
	target  atomic.Pointer[url.URL]
}

// To makes the front forward to the server at rawURL (http://HOST:PORT)
// from now on, instead of Backend.
func (p *Proxy) To(t testing.TB, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p.target.Store(u)
}

// Handle makes the backend serve h from now on: for a handler that needs
// the proxy's public URL, New takes nil.
func (p *Proxy) Handle(h http.Handler) { p.handler.Store(&h) }

// New serves h behind a proxy that strips prefix and, when forwarded is
// true, sets X-Forwarded-Host, X-Forwarded-Proto and X-Forwarded-For (as
// httputil.ProxyRequest.SetXForwarded does; false sends none, like nginx
// by default). Both servers close when the test ends. h may be nil until
// Handle gives it.
func New(t testing.TB, h http.Handler, prefix string, forwarded bool) *Proxy {
	t.Helper()
	p := NewFront(t, prefix, forwarded)
	if h != nil {
		p.Handle(h)
	}
	backend := httptest.NewUnstartedServer(nil)
	addr := backend.Listener.Addr().String()
	backend.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil || r.Host != addr {
			t.Errorf("the backend sees %s with TLS %v: the proxy must pass the backend's Host over HTTP", r.Host, r.TLS != nil)
		}
		h := p.handler.Load()
		if h == nil {
			http.Error(w, "testproxy: no handler", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
	backend.Start()
	p.Backend = backend
	t.Cleanup(p.Backend.Close)
	p.To(t, p.Backend.URL)
	return p
}

// NewFront starts the front alone: it forwards where To says, to a server
// the test starts itself (a command's), as New's does.
func NewFront(t testing.TB, prefix string, forwarded bool) *Proxy {
	t.Helper()
	p := &Proxy{Prefix: strings.TrimSuffix(prefix, "/")}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		if forwarded {
			pr.SetXForwarded()
		}
		pr.SetURL(p.target.Load())
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, p.Prefix)
		pr.Out.URL.RawPath = ""
		pr.Out.Host = "" // the backend's, from the URL
	}}
	p.Front = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, p.Prefix+"/") || p.target.Load() == nil {
			http.NotFound(w, r)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Front.Close)
	p.client = p.Front.Client()
	p.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return p
}

// Origin is the origin users open: https://127.0.0.1:PORT.
func (p *Proxy) Origin() string { return p.Front.URL }

// Public is the URL users open the backend's root at, the public URL to
// configure: https://127.0.0.1:PORT/prefix/.
func (p *Proxy) Public() string { return p.Front.URL + p.Prefix + "/" }

// Answer is a response read whole.
type Answer struct {
	Code   int
	Header http.Header
	Body   string
}

// Do sends a request to the front at path (under the prefix, e.g.
// "/gate?token=..."), or to url when it is absolute, with headers hdr;
// redirects are answered, not followed.
func (p *Proxy) Do(t testing.TB, method, path string, body io.Reader, hdr map[string]string) Answer {
	t.Helper()
	u := path
	if !strings.HasPrefix(path, "https://") {
		u = p.Public() + strings.TrimPrefix(path, "/")
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return Answer{Code: res.StatusCode, Header: res.Header, Body: string(b)}
}

// Log is a log a test reads while handlers write it.
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p to the log.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
