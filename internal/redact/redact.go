// Package redact hides the secrets of database URLs in what FlowStone
// prints or logs: the password of a URL's userinfo, and the value of every
// password= or sslpassword= parameter, in a URL's query or in PostgreSQL's
// key=value form. Every message that can hold a database URL goes
// through it: the command line's errors and banners, and Open's errors.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces each secret.
const Mask = "xxxxx"

var (
	// kvPassword is a password parameter in a query (?password=,
	// &password=) or in key=value form (password=s3cret, password='a b').
	kvPassword = regexp.MustCompile(`(?i)((?:^|[?&\s;])(?:ssl)?password=)('[^']*'|[^&\s;#]*)`)
	// userinfo is the password of a URL that did not parse.
	userinfo = regexp.MustCompile(`(://[^/:@\s]*):[^@/\s]*@`)
)

// URL returns s, a database URL or connection string, with its secrets
// masked. A string without secrets comes back unchanged.
func URL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
		if u.RawQuery != "" {
			parts := strings.Split(u.RawQuery, "&")
			for i, part := range parts {
				k, _, _ := strings.Cut(part, "=")
				if key, err := url.QueryUnescape(k); err == nil && isPassword(key) {
					parts[i] = k + "=" + Mask
				}
			}
			u.RawQuery = strings.Join(parts, "&")
		}
		return u.String()
	}
	s = userinfo.ReplaceAllString(s, "$1:"+Mask+"@")
	return kvPassword.ReplaceAllString(s, "${1}"+Mask)
}

func isPassword(key string) bool {
	key = strings.ToLower(key)
	return key == "password" || key == "sslpassword"
}

// minSecret is the shortest password Text looks for on its own: a shorter
// one would mask unrelated letters of the message.
const minSecret = 4

// Text returns msg with the secrets of the database URL dsn masked: dsn
// itself where msg quotes it, and its passwords wherever else they appear
// (those of at least 4 bytes). Errors that may quote the URL pass through
// it before they are printed.
func Text(msg, dsn string) string {
	if dsn == "" {
		return msg
	}
	if safe := URL(dsn); safe != dsn {
		msg = strings.ReplaceAll(msg, dsn, safe)
	}
	for _, p := range passwords(dsn) {
		if len(p) >= minSecret {
			msg = strings.ReplaceAll(msg, p, Mask)
		}
	}
	return msg
}

// passwords returns the secrets dsn holds, raw and decoded.
func passwords(dsn string) []string {
	var out []string
	add := func(raw string) {
		raw = strings.Trim(raw, "'")
		if raw == "" {
			return
		}
		out = append(out, raw)
		if dec, err := url.QueryUnescape(raw); err == nil && dec != raw {
			out = append(out, dec)
		}
	}
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if p, has := u.User.Password(); has {
			add(p)
			if i := strings.Index(dsn, "://"); i >= 0 { // the password as typed
				if at := strings.Index(dsn[i+3:], "@"); at >= 0 {
					if _, raw, ok := strings.Cut(dsn[i+3:i+3+at], ":"); ok {
						add(raw)
					}
				}
			}
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		add(m[2])
	}
	return out
}

// Error is err with the secrets of dsn masked in its message; errors.Is
// and errors.As still see err.
func Error(err error, dsn string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if safe := Text(msg, dsn); safe != msg {
		return &redacted{msg: safe, err: err}
	}
	return err
}

type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
