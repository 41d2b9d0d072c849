package runtime

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone/runtime/internal/websec"
	"github.com/flowstone-go/flowstone/strategy"
)

// DecideWithToken applies a gate link's decision, recorded as by,
// unverified.
func (e *Engine) DecideWithToken(ctx context.Context, token, by, reason string) error {
	c, err := e.verifyGateToken(token)
	if err != nil {
		return err
	}
	if by == "" {
		by = "signed link"
	}
	return e.decide(ctx, c.ref(), strategy.GateDecision{Action: c.Action, By: by, Reason: reason, At: time.Now()})
}

// GateOption configures GateHandler.
type GateOption func(*gateLinks)

// TrustUserHeader makes GateHandler take who decides from header (for
// example X-Forwarded-User), set by the authenticating proxy in front of
// it: the name is recorded as verified, the page asks for none, and a
// request without the header is refused (403), as one that went around
// the proxy. Only use it behind a proxy that sets the header on every
// request and drops what clients send under that name.
func TrustUserHeader(header string) GateOption {
	return func(g *gateLinks) {
		if header = strings.TrimSpace(header); header != "" {
			g.user = func(r *http.Request) (string, bool) {
				name := strings.TrimSpace(r.Header.Get(header))
				return name, name != ""
			}
			g.userFrom = "the " + http.CanonicalHeaderKey(header) + " header of the proxy in front"
		}
	}
}

// GateUser makes GateHandler take who decides from user, a program's own
// sign-in (a session cookie, a client certificate): the name is recorded
// as verified; ok false refuses the request (403). It replaces
// TrustUserHeader.
func GateUser(user func(r *http.Request) (name string, ok bool)) GateOption {
	return func(g *gateLinks) {
		if user != nil {
			g.user, g.userFrom = user, "the program's sign-in"
		}
	}
}

// ErrInvalidPublicURL is a public URL (GatePublicURL, the web page's
// Options.PublicURL, --public-url) that cannot be where users open a
// server: not an absolute http:// or https:// URL with a host, or one
// with a user, query or fragment.
var ErrInvalidPublicURL = websec.ErrPublicURL

// ParsePublicURL checks raw as a public URL, the address users open a
// server at (behind a reverse proxy, the proxy's: https://ops.example.com/,
// or https://ops.example.com/approvals/ when the proxy serves it under a
// path), and returns it normalized: scheme and host in lower case, a
// default port dropped, the path ending in "/". An unfit URL is an error
// matching ErrInvalidPublicURL that says why.
func ParsePublicURL(raw string) (*url.URL, error) { return websec.ParsePublicURL(raw) }

// GatePublicURL tells GateHandler the URL users open its server at, when
// a reverse proxy in front changes Host or the scheme (TLS termination,
// nginx without proxy_set_header Host, most ingress controllers): a
// decision must come from that URL's origin, instead of the origin the
// request's Host names. raw is checked as ParsePublicURL does; GateHandler
// panics on one it refuses, so check user input with ParsePublicURL first.
// It takes precedence over TrustForwardedHeaders.
func GatePublicURL(raw string) GateOption {
	return func(g *gateLinks) {
		u, err := ParsePublicURL(raw)
		if err != nil {
			g.err = fmt.Errorf("GatePublicURL: %w", err)
			return
		}
		g.site.Public = u
	}
}

// TrustForwardedHeaders makes GateHandler, without a GatePublicURL, take
// the origin users open from the reverse proxy's X-Forwarded-Host and
// X-Forwarded-Proto headers (their last values), or else from the last
// element of its Forwarded header. Only use it when the server is
// reachable through that proxy alone and the proxy sets those headers,
// replacing what clients send; a public URL (GatePublicURL) depends on
// nothing a request says and is the safer choice.
func TrustForwardedHeaders() GateOption {
	return func(g *gateLinks) { g.site.TrustForwarded = true }
}

// gateLinks is GateHandler: the page of a signed gate link.
type gateLinks struct {
	e *Engine
	// user, when set, names the authenticated user of a request.
	user     func(*http.Request) (string, bool)
	userFrom string
	// site is where users open the links, for the origin check.
	site websec.Site
	// err is an option's error; GateHandler panics with it.
	err error
}

// GateHandler serves gate links: GET ?token=... shows what the link will
// do and a confirmation form (so link previews change nothing); POST from
// that form applies it. A POST must come from the page itself: from its
// origin (Origin or Referer) and carrying the form's token, which is bound
// to the link; anything else (a bare POST to the link, a form on another
// site) is refused with 403 and changes nothing. Every answer forbids
// framing (X-Frame-Options: DENY) and loads nothing (a strict
// Content-Security-Policy). A link works once: once its gate is decided,
// by any path, the link answers 409 "already decided by ... at ..." and
// changes nothing. Who decides is the authenticated user when an option
// (TrustUserHeader, GateUser) says who that is, recorded as verified;
// otherwise the name typed on the page, recorded as unverified. A forged
// or expired token answers 403.
//
// Behind a reverse proxy that changes Host or the scheme, give the URL
// users open with GatePublicURL (or trust the proxy's forwarded headers,
// TrustForwardedHeaders): otherwise every decision is refused, and the
// 403 and the engine's log say so when the request looks proxied.
// GateHandler panics when an option is invalid (a GatePublicURL that
// ParsePublicURL refuses).
func (e *Engine) GateHandler(opts ...GateOption) http.Handler {
	g := &gateLinks{e: e, site: websec.Site{Setting: "serve-gates --public-url (runtime.GatePublicURL in Go)"}}
	for _, o := range opts {
		o(g)
	}
	if g.err != nil {
		panic(g.err)
	}
	return g
}

// GateLink returns the link that approves (action "approve") or rejects
// ("reject") the gate ref until ttl has passed: base, the URL users open
// GateHandler at (behind a reverse proxy, the proxy's, e.g.
// https://ops.example.com/gate), with GateToken's token in its query. A
// base that is not an absolute http:// or https:// URL is an error
// matching ErrInvalidPublicURL.
func (e *Engine) GateLink(base string, ref Ref, action string, ttl time.Duration) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return "", fmt.Errorf("%w %q: want where the gate page is opened, an http:// or https:// URL such as https://ops.example.com/gate", ErrInvalidPublicURL, base)
	}
	token, err := e.GateToken(ref, action, ttl)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("token", token)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// gateStyle is the page's only style, allowed by its hash.
const gateStyle = `body{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}` +
	`label{display:block;margin:.5em 0}.muted{color:#666}`

// gateCSP is the page's policy: nothing loads, its style by hash, its form
// posts to itself, no one frames it.
func gateCSP() string {
	sum := sha256.Sum256([]byte(gateStyle))
	return "default-src 'none'; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
}

var gatePage = template.Must(template.New("gate").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="referrer" content="same-origin"><title>FlowStone gate</title>
<style>` + gateStyle + `</style></head>
<body>
<h1>{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Form}}<form method="post">
<input type="hidden" name="token" value="{{.Token}}">
<input type="hidden" name="form" value="{{.FormToken}}">
{{if .User}}<p>You decide as <b>{{.User}}</b> (signed in).</p>
{{else}}<label>Your name <input name="by" required maxlength="100"></label>
<p class="muted">No sign-in vouches for this name: it is recorded as unverified.</p>
{{end}}<label>Reason <input name="reason" size="40" maxlength="500"></label>
<p><button type="submit">{{.Action}}</button></p>
</form>{{end}}
</body></html>`))

// gatePageData fills gatePage.
type gatePageData struct {
	Title, Message, Token, FormToken, Action, User string
	Form                                           bool
}

// formToken is the token the page's form carries: bound to the link and
// to the signed-in user, so that a form fetched through one link or by
// one user decides nothing else.
func (e *Engine) formToken(link, user string) string {
	m := hmac.New(sha256.New, e.cfg.Secret)
	m.Write([]byte("flowstone-gate-form:" + link + "\x00" + user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (g *gateLinks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	websec.Headers(hdr, gateCSP())
	// Same-origin, not no-referrer: with no-referrer browsers send
	// "Origin: null" with the form, and the origin check needs it.
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		hdr.Set("Allow", "GET, POST")
		g.answer(w, http.StatusMethodNotAllowed, gatePageData{Title: "Method not allowed", Message: "Open the link, then confirm on its page."})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	token := r.FormValue("token")
	c, err := g.e.verifyGateToken(token)
	if err != nil {
		g.answer(w, http.StatusForbidden, gatePageData{Title: "Invalid link", Message: err.Error()})
		return
	}
	user := ""
	if g.user != nil {
		name, ok := g.user(r)
		if !ok || !validName(name) {
			g.answer(w, http.StatusForbidden, gatePageData{Title: "Sign in first",
				Message: "This page takes who decides from " + g.userFrom + ", and this request carries no user: open the link through it."})
			return
		}
		user = name
	}
	ref := c.ref()
	what := c.Asset + partitionPhrase(c.Partition) + " of run " + c.Run
	// One decision per gate: a decided link answers so and offers nothing.
	if g.decided(w, r, ref, what) {
		return
	}
	page := gatePageData{Token: token, FormToken: g.e.formToken(token, user), Action: c.Action, User: user, Form: true}
	if r.Method == http.MethodGet {
		page.Title = strings.ToUpper(c.Action[:1]) + c.Action[1:] + " " + c.Asset
		page.Message = "Run " + c.Run + ": " + c.Action + " the value of " + c.Asset + partitionPhrase(c.Partition) + "?"
		g.answer(w, http.StatusOK, page)
		return
	}
	if err := g.site.CheckOrigin(r, true); err != nil {
		msg := err.Error() + ". Nothing changed: open the link in a browser and confirm on its page."
		var oe *websec.OriginError
		if errors.As(err, &oe) && oe.Hint != "" {
			// A proxy in front, not an attack: whoever runs the server
			// must configure it, and the log is where they look.
			g.e.log.WarnContext(r.Context(), "gate link: decision refused behind a reverse proxy", "run", c.Run, "asset", c.Asset,
				"partition", c.Partition, "refused", oe.Why, "fix", oe.Hint)
			msg = err.Error() + ". Nothing changed: whoever runs this server must configure it; then open the link again."
		}
		g.answer(w, http.StatusForbidden, gatePageData{Title: "Refused", Message: msg})
		return
	}
	if !websec.Equal(r.PostFormValue("form"), page.FormToken) {
		g.answer(w, http.StatusForbidden, gatePageData{Title: "Refused",
			Message: "This link decides only from its own page: the form token is missing or wrong. Nothing changed: open the link in a browser and press " + c.Action + "."})
		return
	}
	by, verified := user, user != ""
	if !verified {
		by = strings.TrimSpace(r.PostFormValue("by"))
		if !validName(by) {
			page.Title, page.Message = "Say who you are", "Your name is required: up to 100 printable characters."
			g.answer(w, http.StatusBadRequest, page)
			return
		}
	}
	d := strategy.GateDecision{Action: c.Action, By: by, Verified: verified, Reason: r.PostFormValue("reason"), At: time.Now()}
	if err := g.e.decide(r.Context(), ref, d); err != nil {
		if g.decided(w, r, ref, what) {
			return
		}
		g.e.log.ErrorContext(r.Context(), "gate link", "run", c.Run, "asset", c.Asset, "error", err)
		g.answer(w, http.StatusInternalServerError, gatePageData{Title: "Error", Message: err.Error()})
		return
	}
	rec := GateDecision{By: by, Verified: verified}
	g.answer(w, http.StatusOK, gatePageData{Title: "Done", Message: what + ": " + pastTense(c.Action) + " by " + rec.Decider() + "."})
}

// decided answers, and reports it did, unless gate ref waits for a
// decision: 409 when it holds one (saying who decided what and when) or
// is not waiting, 404 when the link's run does not hold it, 500 when the
// database fails.
func (g *gateLinks) decided(w http.ResponseWriter, r *http.Request, ref Ref, what string) bool {
	ctx := r.Context()
	q := g.e.be.pool()
	node, err := g.e.resolveRef(ctx, q, ref)
	if err != nil {
		if errors.Is(err, ErrNotInRun) {
			g.answer(w, http.StatusNotFound, gatePageData{Title: "Unknown gate", Message: err.Error()})
			return true
		}
		g.answer(w, http.StatusInternalServerError, gatePageData{Title: "Error", Message: err.Error()})
		return true
	}
	d, err := g.e.decision(ctx, q, ref)
	if err != nil {
		g.answer(w, http.StatusInternalServerError, gatePageData{Title: "Error", Message: err.Error()})
		return true
	}
	switch {
	case d != nil:
		msg := what + " was already decided by " + d.Decider() + " at " + d.At.UTC().Format(time.RFC3339) + ": " + pastTense(d.Action)
		if d.Reason != "" {
			msg += " (" + d.Reason + ")"
		}
		g.answer(w, http.StatusConflict, gatePageData{Title: "Already decided", Message: msg + ". This link changes nothing."})
		return true
	case node.status != StatusWaiting:
		msg := what + " is " + string(node.status) + ": there is nothing to decide"
		if !node.status.Terminal() {
			msg += " yet; open the link again once its value is computed"
		}
		g.answer(w, http.StatusConflict, gatePageData{Title: "Nothing to decide", Message: msg + "."})
		return true
	}
	return false
}

func (g *gateLinks) answer(w http.ResponseWriter, status int, page gatePageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := gatePage.Execute(w, page); err != nil {
		g.e.log.Debug("gate link: write page", "error", err)
	}
}

// validName accepts a decider's name: 1 to 100 characters of valid UTF-8,
// no control characters.
func validName(s string) bool {
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > 100 {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}
