package websec

import (
	"errors"
	"net/http/httptest"
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
