// Package web is FlowStone's web page: the asset graph of every bound
// pipeline, each asset's partitions and materializations, runs with their
// timeline (live while running), gates to approve or reject, backfills,
// schedules and sensors. New returns an http.Handler; the command line's
// serve mounts it, and a program can mount it in its own server:
//
//	h, err := web.New(eng, web.Options{Users: map[string]string{"ana": pw}})
//	mux.Handle("/flowstone/", http.StripPrefix("/flowstone", h))
//
// Reading needs no sign-in (bind it to a trusted address: serve listens on
// 127.0.0.1 unless told otherwise). Writing (approve, reject, cancel) needs
// an authenticated user, by HTTP basic auth with one of Options.Users or a
// bearer Options.Token, and a basic-auth write also carries the page's
// CSRF token (the X-CSRF-Token header) from the same origin. Behind a
// reverse proxy that changes Host or the scheme, Options.PublicURL says
// which origin that is. The page and its layout library are embedded: it
// works offline.
package web

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/internal/websec"
)

//go:embed static
var static embed.FS

// Options configure the handler.
type Options struct {
	// Users may write (approve, reject, cancel), signing in with HTTP basic
	// auth as name and password; their name is recorded as who decided.
	Users map[string]string
	// Token, when set, lets API clients write with "Authorization: Bearer
	// TOKEN"; their decisions are recorded under the request's "by" field
	// (or "token"). Bearer requests need no CSRF token: browsers never
	// attach one on their own.
	Token string
	// River, when set, is River's own web view, mounted under /river/.
	River http.Handler
	// Logger receives errors the handler answers with 500, and writes
	// refused behind a misconfigured reverse proxy; nil means
	// slog.Default().
	Logger *slog.Logger
	// PublicURL is the URL users open the page at, when a reverse proxy
	// in front changes Host or the scheme (TLS termination, nginx without
	// proxy_set_header Host, most ingress controllers), e.g.
	// https://ops.example.com/flowstone/: writes must come from its
	// origin instead of the one the request's Host names, and redirects
	// point under it. New refuses one runtime.ParsePublicURL refuses.
	PublicURL string
	// TrustForwardedHeaders, without PublicURL, takes the origin users
	// open from the proxy's X-Forwarded-Host and X-Forwarded-Proto (their
	// last values), or else the last element of Forwarded. Only set it
	// when the page is reachable through that proxy alone and the proxy
	// sets those headers, replacing what clients send; PublicURL depends
	// on nothing a request says and is the safer choice.
	TrustForwardedHeaders bool
}

// Handler serves the page and its JSON API.
type Handler struct {
	eng  *runtime.Engine
	opts Options
	log  *slog.Logger
	csrf string
	mux  *http.ServeMux
	// site is where users open the page, for the origin check and
	// redirects.
	site websec.Site
}

// ErrNoWriters: New was given neither Users nor Token, so every write is
// refused. It is not returned by New; writes answer 403 with it.
var ErrNoWriters = errors.New("writes are disabled: no users or token are configured")

// New returns the page and API of the pipelines bound to eng.
func New(eng *runtime.Engine, opts Options) (*Handler, error) {
	if eng == nil {
		return nil, errors.New("web: nil engine")
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	h := &Handler{eng: eng, opts: opts, log: opts.Logger, csrf: hex.EncodeToString(b[:]), mux: http.NewServeMux(),
		site: websec.Site{TrustForwarded: opts.TrustForwardedHeaders, Setting: "serve --public-url (web.Options.PublicURL in Go)"}}
	if opts.PublicURL != "" {
		u, err := websec.ParsePublicURL(opts.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("web: Options.PublicURL: %w", err)
		}
		h.site.Public = u
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	files, err := fs.Sub(static, "static")
	if err != nil {
		return nil, err
	}
	h.routes(http.FileServerFS(files))
	return h, nil
}

func (h *Handler) routes(files http.Handler) {
	m := h.mux
	m.Handle("GET /", files)
	m.HandleFunc("GET /api/session", h.session)
	m.HandleFunc("GET /api/graph", h.graph)
	m.HandleFunc("GET /api/pipelines/{pipeline}/assets/{asset}", h.asset)
	m.HandleFunc("GET /api/runs", h.runs)
	m.HandleFunc("GET /api/runs/{id}", h.run)
	m.HandleFunc("GET /api/runs/{id}/events", h.runEvents)
	m.HandleFunc("GET /api/runs/{id}/logs", h.runLogs)
	m.HandleFunc("POST /api/runs/{id}/cancel", h.write(h.cancelRun, true))
	m.HandleFunc("GET /api/gates", h.gates)
	m.HandleFunc("GET /api/gates/decided", h.decidedGates)
	m.HandleFunc("POST /api/gates/{action}", h.write(h.decide, true))
	m.HandleFunc("GET /api/backfills", h.backfills)
	m.HandleFunc("POST /api/backfills/{id}/cancel", h.write(h.cancelBackfill, true))
	m.HandleFunc("GET /api/schedules", h.schedules)
	m.HandleFunc("GET /api/health", h.health)
}

// ServeHTTP serves the page, the API and, when mounted, River's view.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w = h.site.Redirects(w)
	websec.Headers(w.Header(), "")
	if h.opts.River != nil && (r.URL.Path == "/river" || strings.HasPrefix(r.URL.Path, "/river/")) {
		// River's view brings its own scripts and policy. Its writes
		// (cancel, retry, delete jobs) need a user like the page's, asked
		// for by the browser's own dialog as River's script sends no
		// credentials, and only from the same origin.
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.opts.River.ServeHTTP(w, r)
			return
		}
		h.write(func(w http.ResponseWriter, r *http.Request, _ string) { h.opts.River.ServeHTTP(w, r) }, false)(w, r)
		return
	}
	// FlowStone's pages load only their own files.
	websec.Headers(w.Header(), "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.mux.ServeHTTP(w, r)
}

// session tells the page what it may do: whether writes are possible, the
// CSRF token writes carry, and whether River's view is mounted.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	var pipelines []string
	for _, p := range h.eng.Pipelines() {
		pipelines = append(pipelines, p.Name())
	}
	h.json(w, map[string]any{
		"csrf":      h.csrf,
		"writable":  len(h.opts.Users) > 0 || h.opts.Token != "",
		"river":     h.opts.River != nil,
		"database":  h.eng.Dialect(),
		"pipelines": pipelines,
	})
}

// write wraps a handler that changes state: it needs an authenticated
// user and, for basic auth (which browsers attach on their own), the CSRF
// token from the same origin.
func (h *Handler) write(fn func(w http.ResponseWriter, r *http.Request, user string), csrf bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(h.opts.Users) == 0 && h.opts.Token == "" {
			h.fail(w, http.StatusForbidden, ErrNoWriters.Error()+" (serve --user NAME:PASSWORD or --token)")
			return
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && h.opts.Token != "" {
			if !websec.Equal(tok, h.opts.Token) {
				h.unauthorized(w, csrf)
				return
			}
			fn(w, r, "")
			return
		}
		name, pass, ok := r.BasicAuth()
		want, known := h.opts.Users[name]
		if !ok || !known || subtle.ConstantTimeCompare([]byte(pass), []byte(want)) != 1 {
			h.unauthorized(w, csrf)
			return
		}
		if err := h.site.CheckOrigin(r, false); err != nil {
			var oe *websec.OriginError
			if errors.As(err, &oe) && oe.Hint != "" {
				// A proxy in front, not an attack: whoever runs the
				// server must configure it, and the log is where they
				// look.
				h.log.WarnContext(r.Context(), "web: write refused behind a reverse proxy", "method", r.Method, "path", r.URL.Path,
					"user", name, "refused", oe.Why, "fix", oe.Hint)
			}
			h.fail(w, http.StatusForbidden, err.Error()+": write from the page")
			return
		}
		if csrf && !websec.Equal(r.Header.Get("X-CSRF-Token"), h.csrf) {
			h.fail(w, http.StatusForbidden, "missing or wrong CSRF token: write from the page")
			return
		}
		fn(w, r, name)
	}
}

func (h *Handler) unauthorized(w http.ResponseWriter, page bool) {
	// The page asks for the name and password itself, rather than the
	// browser's dialog popping up over a fetch; River's view leaves it to
	// the browser.
	if !page {
		w.Header().Set("WWW-Authenticate", `Basic realm="FlowStone", charset="UTF-8"`)
	}
	h.fail(w, http.StatusUnauthorized, "sign in to write: a user name and password, or the bearer token")
}
