package redact

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@h/db?password=x", "postgres://u:xxxxx@h/db?password=xxxxx"},
		{"postgres://u@h/db?sslmode=disable&PassWord=x&sslpassword=y", "postgres://u@h/db?sslmode=disable&PassWord=xxxxx&sslpassword=xxxxx"},
		{"postgresql://u:p%40ss@h:5432/db", "postgresql://u:xxxxx@h:5432/db"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='a b' dbname=db", "host=h password=xxxxx dbname=db"},
		{"mysql://u:secret@h:x:y/db", "mysql://u:xxxxx@h:x:y/db"},
		{"./flowstone.db", "./flowstone.db"},
		{"sqlite:///var/lib/a.db", "sqlite:///var/lib/a.db"},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	dsn := "postgres://u:secret@h/db?password=hunter22"
	base := errors.New("boom")
	err := Error(fmt.Errorf("connect %s (password hunter22, user secret): %w", dsn, base), dsn)
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hunter22") || !errors.Is(err, base) {
		t.Errorf("Error = %q (is base: %v)", err, errors.Is(err, base))
	}
	if err := Error(base, dsn); err != base {
		t.Errorf("an error without secrets changed: %v", err)
	}
}
