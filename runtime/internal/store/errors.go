package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// SQLite result codes (sqlite3.h); extended codes keep the primary code in
// their low byte.
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// Retryable reports whether a transaction failed only because it collided
// with another (serialization failure, deadlock, SQLite busy or locked) and
// can run again from the start. Errors are matched by code, never by text.
func Retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		switch liteErr.Code() & 0xff {
		case sqliteBusy, sqliteLocked:
			return true
		}
	}
	return false
}

// Unreachable reports whether err means the database could not be reached
// for now: a connection refused, reset or lost mid-statement, or the server
// shutting down, restarting or not yet accepting connections (SQLSTATE
// class 08, 57P01-57P03). Those pass with time; an error the server
// answered otherwise (a bad password, an unknown database or table, a
// constraint) does not, nor does a cancelled context or a closed pool.
// SQLite's busy and locked are Retryable instead: a file cannot go away
// and come back.
func Unreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03":
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08")
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		// Not a PgError: the dial or the handshake failed.
		return true
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return false // a host name that does not exist is a bad URL
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
