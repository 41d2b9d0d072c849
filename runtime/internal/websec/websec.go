// Package websec holds the browser protections FlowStone's HTTP handlers
// share: the web page (runtime/web) and the signed gate links
// (Engine.GateHandler). One copy, so that a fix to one is a fix to both.
package websec

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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

// SameOrigin returns nil when r comes from a page of its own origin, else
// an error wrapping ErrCrossOrigin that says why. It refuses a request a
// browser marks as from another site (Sec-Fetch-Site), and one whose
// Origin names another host (or the opaque "null" a sandboxed frame
// sends, unless Sec-Fetch-Site vouches for it). Without an Origin, strict
// requires a Referer of the same host or a same-origin Sec-Fetch-Site:
// browsers send one of them with every form they post, so a request with
// none is not a form posted from the page.
func SameOrigin(r *http.Request, strict bool) error {
	site := r.Header.Get("Sec-Fetch-Site")
	switch site {
	case "", "same-origin", "none":
	default:
		return refused("the browser says it comes from another site (Sec-Fetch-Site: " + site + ")")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if origin == "null" && site == "same-origin" {
			return nil
		}
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			return refused("it comes from " + origin + ", not from " + r.Host)
		}
		return nil
	}
	if !strict || site == "same-origin" {
		return nil
	}
	ref := r.Header.Get("Referer")
	if ref == "" {
		return refused("no Origin or Referer header says it was posted from this site's page")
	}
	if u, err := url.Parse(ref); err != nil || u.Host != r.Host {
		return refused("it comes from a page of another site")
	}
	return nil
}

// Equal compares a token a request carries with the expected one in
// constant time; an empty token never matches.
func Equal(got, want string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func refused(why string) error { return fmt.Errorf("%w: %s", ErrCrossOrigin, why) }
