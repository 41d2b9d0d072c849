package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// Which errors mean the database is away for now, and which are for good.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("query: %w", &pgconn.PgError{Code: code}) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("connect: %w", refused), true},
		{"connection lost mid-statement", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection closed", io.EOF, true},
		{"pool's conn closed", pgconn.ErrConnClosed, true},
		{"admin shutdown", pg("57P01"), true},
		{"crash shutdown", pg("57P02"), true},
		{"starting up", pg("57P03"), true},
		{"connection failure", pg("08006"), true},
		{"bad password", pg("28P01"), false},
		{"unknown database", pg("3D000"), false},
		{"unknown table", pg("42P01"), false},
		{"unique violation", pg("23505"), false},
		{"serialization failure (Retryable)", pg("40001"), false},
		{"unknown host", &net.DNSError{Err: "no such host", Name: "db.example", IsNotFound: true}, false},
		{"cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"other", errors.New("boom"), false},
		{"nil", nil, false},
	} {
		if got := Unreachable(c.err); got != c.want {
			t.Errorf("%s (%v): Unreachable = %v; want %v", c.name, c.err, got, c.want)
		}
	}
}
