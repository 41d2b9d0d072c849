// Package websec holds the browser protections FlowStone's HTTP handlers
// share: the web page (runtime/web) and the signed gate links
// (Engine.GateHandler). One copy, so that a fix to one is a fix to both.
package websec

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Headers sets, on every answer of a FlowStone page, the headers that keep
// it out of other sites' frames (X-Frame-Options and the policy's
// frame-ancestors), stop MIME sniffing and set its Content-Security-Policy
// csp (empty leaves the policy to the caller).
func Headers(h http.Header, csp string) {
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
}

// ErrCrossOrigin is a write refused because the browser says it comes
// from another site, or, in strict mode, because nothing says where it
// comes from.
var ErrCrossOrigin = errors.New("cross-origin request refused")

// ErrPublicURL is a public URL that cannot be where users open a handler.
var ErrPublicURL = errors.New("invalid public URL")

// ParsePublicURL checks raw, the URL users open a handler at (behind a
// proxy, the proxy's), and returns it with its scheme and host in lower
// case, a default port dropped and its path ending in "/". It must be an
// absolute http:// or https:// URL with a host and nothing else: no user,
// query or fragment.
func ParsePublicURL(raw string) (*url.URL, error) {
	bad := func(why string) (*url.URL, error) {
		return nil, fmt.Errorf("%w %q: %s; want the address users open, e.g. https://ops.example.com/ or https://ops.example.com/flowstone/", ErrPublicURL, raw, why)
	}
	if strings.TrimSpace(raw) == "" {
		return bad("empty")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return bad("not a URL")
	case u.Scheme == "" || u.Opaque != "":
		return bad("no http:// or https:// scheme")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("the scheme is " + u.Scheme + ", not http or https")
	case u.Host == "" || u.Hostname() == "":
		return bad("no host")
	case u.User != nil:
		return bad("it holds a user name or password")
	case u.RawQuery != "" || u.ForceQuery:
		return bad("it has a query")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return bad("it has a fragment")
	}
	u.Host = strings.ToLower(u.Host)
	if port := u.Port(); port == defaultPort(u.Scheme) {
		u.Host = u.Hostname()
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
	} else if port != "" {
		if _, err := net.LookupPort("tcp", port); err != nil {
			return bad("bad port " + port)
		}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		if u.RawPath != "" {
			u.RawPath += "/"
		}
	}
	return u, nil
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

// Site says where users reach a handler, for the origin check and for
// the links and redirects it answers.
type Site struct {
	// Public is the URL users open (ParsePublicURL's): a write must come
	// from its origin, and redirects point under it. Nil means the
	// request's own Host.
	Public *url.URL
	// TrustForwarded, without Public, takes the origin users open from
	// the proxy's X-Forwarded-Host and X-Forwarded-Proto headers (their
	// last values), or else the last element of Forwarded.
	TrustForwarded bool
	// Setting names, in refusals, how to configure Public, e.g.
	// "serve --public-url (web.Options.PublicURL)".
	Setting string
}

// OriginError is a write refused by the origin check. Hint, when not
// empty, says what to configure: the request looks like it came through
// a reverse proxy that changes Host or the scheme.
type OriginError struct {
	Why  string
	Hint string
}

func (e *OriginError) Error() string {
	msg := ErrCrossOrigin.Error() + ": " + e.Why
	if e.Hint != "" {
		msg += ". " + e.Hint
	}
	return msg
}

// Unwrap makes an OriginError match ErrCrossOrigin.
func (e *OriginError) Unwrap() error { return ErrCrossOrigin }

// SameOrigin checks r as Site{}.CheckOrigin does: against its own Host.
func SameOrigin(r *http.Request, strict bool) error { return Site{}.CheckOrigin(r, strict) }

// expected is the origin users open: scheme ("" when unknown: compare the
// host only) and host, and where it was taken from.
func (s Site) expected(r *http.Request) (scheme, host, from string) {
	if s.Public != nil {
		return s.Public.Scheme, s.Public.Host, "the public URL " + s.Public.String()
	}
	if s.TrustForwarded {
		if h := lastValue(r.Header.Values("X-Forwarded-Host")); h != "" {
			return strings.ToLower(lastValue(r.Header.Values("X-Forwarded-Proto"))), h, "X-Forwarded-Host"
		}
		if fw := forwarded(r.Header.Values("Forwarded")); fw["host"] != "" {
			return strings.ToLower(fw["proto"]), fw["host"], "Forwarded"
		}
	}
	return "", r.Host, "the request's Host"
}

// CheckOrigin returns nil when r comes from a page of the origin users
// open (s.Public's, the trusted proxy's, or else r's Host), else an
// *OriginError that says why. It refuses a request a browser marks as
// from another site (Sec-Fetch-Site), and one whose Origin names another
// origin (or the opaque "null" a sandboxed frame sends, unless
// Sec-Fetch-Site vouches for it). Without an Origin, strict requires a
// Referer of the same origin or a same-origin Sec-Fetch-Site: browsers
// send one of them with every form they post, so a request with none is
// not a form posted from the page. Without a public URL or a trusted
// proxy's header only hosts are compared, as the scheme users open is
// unknown.
func (s Site) CheckOrigin(r *http.Request, strict bool) error {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "", "same-origin", "none":
	default:
		return &OriginError{Why: "the browser says it comes from another site (Sec-Fetch-Site: " + site + ")"}
	}
	scheme, host, from := s.expected(r)
	matches := func(u *url.URL) bool {
		if !sameHost(u, host) {
			return false
		}
		return scheme == "" || strings.EqualFold(u.Scheme, scheme)
	}
	want := host
	if scheme != "" {
		want = scheme + "://" + host
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if origin == "null" && site == "same-origin" {
			return nil
		}
		if u, err := url.Parse(origin); err != nil || !matches(u) {
			return &OriginError{Why: "it comes from " + origin + ", not from " + want + " (" + from + ")", Hint: s.hint(r, origin, site)}
		}
		return nil
	}
	if !strict || site == "same-origin" {
		return nil
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return &OriginError{Why: "no Origin or Referer header says it was posted from this site's page"}
	}
	if u, err := url.Parse(ref); err != nil || !matches(u) {
		seen := ""
		if err == nil {
			seen = u.Scheme + "://" + u.Host
		}
		return &OriginError{Why: "it comes from a page of another site", Hint: s.hint(r, seen, site)}
	}
	return nil
}

// sameHost compares u's host with host, a default port matching none.
func sameHost(u *url.URL, host string) bool {
	if u == nil || u.Host == "" {
		return false
	}
	a, b := strings.ToLower(u.Host), strings.ToLower(host)
	if a == b {
		return true
	}
	strip := func(h, scheme string) string {
		if hn, port, err := net.SplitHostPort(h); err == nil && port == defaultPort(scheme) {
			return hn
		}
		return h
	}
	return strip(a, u.Scheme) == strip(b, u.Scheme)
}

// proxyHeaders are the headers reverse proxies add.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-For", "X-Real-Ip", "Via"}

// hint says what to configure when a refused request looks like it came
// from the server's own page through a reverse proxy: the browser says
// the page and the request share an origin (Sec-Fetch-Site: same-origin),
// or the proxy's X-Forwarded-Host or Forwarded names the very host the
// Origin does. Then it names the origin to configure. A request that
// only carries a proxy's headers gets a hint that names none, as it may
// as well be another site's; and "" when nothing suggests a proxy, or
// when the server is configured and nothing ties the request to its page
// (an attack or a mistake, which naming settings would help neither).
func (s Site) hint(r *http.Request, origin, site string) string {
	var seen []string
	for _, h := range proxyHeaders {
		if v := r.Header.Get(h); v != "" {
			seen = append(seen, h+": "+v)
		}
	}
	fwdHost := lastValue(r.Header.Values("X-Forwarded-Host"))
	if fwdHost == "" {
		fwdHost = forwarded(r.Header.Values("Forwarded"))["host"]
	}
	ou, err := url.Parse(origin)
	if err != nil || ou.Host == "" || (ou.Scheme != "http" && ou.Scheme != "https") {
		ou = nil
	}
	tied := ou != nil && (site == "same-origin" || fwdHost != "" && sameHost(ou, fwdHost))
	setting := s.Setting
	if setting == "" {
		setting = "the public URL setting"
	}
	var b strings.Builder
	switch {
	case len(seen) > 0:
		b.WriteString("It came through a reverse proxy (" + strings.Join(seen, ", ") + ")")
	case tied:
		b.WriteString("The browser says it comes from this site's page (Sec-Fetch-Site: same-origin), so it came through a reverse proxy")
	default:
		return ""
	}
	if !tied {
		switch {
		case s.TrustForwarded && fwdHost == "":
			b.WriteString(" that names no X-Forwarded-Host or Forwarded host: have the proxy set X-Forwarded-Host and X-Forwarded-Proto " +
				"(nginx: proxy_set_header X-Forwarded-Host $host; proxy_set_header X-Forwarded-Proto $scheme), or set " + setting + " to the address users open")
		case s.Public != nil || s.TrustForwarded:
			return ""
		default:
			b.WriteString(": if users open this server through it, set " + setting + " to the address they open, or have the proxy pass Host on (nginx: proxy_set_header Host $host)")
		}
		return b.String()
	}
	target := ou.Scheme + "://" + ou.Host + "/"
	switch {
	case s.Public != nil:
		b.WriteString(", and the public URL " + s.Public.String() + " is not where users open this server: set " + setting + " to " + target)
	case s.TrustForwarded:
		b.WriteString(" whose X-Forwarded-Host and X-Forwarded-Proto (or Forwarded) do not name the address users open: have the proxy set them " +
			"(nginx: proxy_set_header X-Forwarded-Host $host; proxy_set_header X-Forwarded-Proto $scheme), or set " + setting + " to " + target)
	default:
		b.WriteString(", which changes Host or the scheme: set " + setting + " to " + target +
			", or have the proxy pass Host on (nginx: proxy_set_header Host $host)")
	}
	return b.String()
}

// lastValue is the last comma-separated value of a header, the one the
// proxy nearest to the server wrote.
func lastValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	v := vs[len(vs)-1]
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

// forwarded parses the last element of RFC 7239 Forwarded headers into
// its lower-cased parameters.
func forwarded(vs []string) map[string]string {
	out := map[string]string{}
	last := lastValue(vs)
	for _, pair := range strings.Split(last, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok {
			continue
		}
		out[strings.ToLower(k)] = strings.Trim(v, `"`)
	}
	return out
}

// Redirects returns w, or, when s has a public URL, a writer that turns
// the absolute paths of redirects (Location: /x) into URLs under it, so
// that a handler mounted under a prefix by the proxy redirects there.
func (s Site) Redirects(w http.ResponseWriter) http.ResponseWriter {
	if s.Public == nil {
		return w
	}
	return &redirects{ResponseWriter: w, public: s.Public}
}

type redirects struct {
	http.ResponseWriter
	public *url.URL
	wrote  bool
}

func (w *redirects) WriteHeader(code int) {
	if !w.wrote && code >= 300 && code < 400 {
		if loc := w.Header().Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			if rel, err := url.Parse(strings.TrimPrefix(loc, "/")); err == nil {
				w.Header().Set("Location", w.public.ResolveReference(rel).String())
			}
		}
	}
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *redirects) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer: the page's event stream needs it.
func (w *redirects) Flush() {
	w.wrote = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *redirects) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Equal compares a token a request carries with the expected one in
// constant time; an empty token never matches.
func Equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
