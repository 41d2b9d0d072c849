package store

import (
	"errors"

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
