package blobio

import (
	"errors"
	"net/url"
	"strings"
)

// Redact returns rawURL fit for logs and errors: the password of user
// info, and the value of every query parameter whose name suggests a
// secret (key, secret, token, password, signature, credential), become
// "xxxxx". A string that does not parse is replaced whole.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	changed := false
	for name := range q {
		if secretParam(name) {
			q.Set(name, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"key", "secret", "token", "password", "sig", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// redactErr drops the raw URL from an opener's message, which may quote it.
func redactErr(err error, raw string) error {
	msg := err.Error()
	if raw == "" || !strings.Contains(msg, raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(msg, raw, Redact(raw)))
}
