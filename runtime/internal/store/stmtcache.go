package store

import (
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// SQLite spends most of a small statement's time parsing it, and neither
// modernc's driver nor River's SQLite driver keeps prepared statements. The
// engine's one SQLite connection therefore caches them by SQL text; this
// made the wide benchmark 3-4x faster (docs/benchmarks.md).

// maxCachedStmts bounds the cache: statements with variable-length VALUES
// or IN lists have many texts.
const maxCachedStmts = 512

// SQLiteConnector opens modernc SQLite connections to dsn that cache their
// prepared statements.
func SQLiteConnector(dsn string) driver.Connector { return stmtCacheConnector{dsn: dsn} }

// stmtCacheConnector opens modernc connections that cache statements.
type stmtCacheConnector struct{ dsn string }

func (c stmtCacheConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &stmtCacheConn{Conn: conn, stmts: map[string]*cachedStmt{}}, nil
}

func (c stmtCacheConnector) Driver() driver.Driver { return &sqlite.Driver{} }

type cachedStmt struct {
	driver.Stmt
	busy bool // rows are open on it
}

// stmtCacheConn is used by one goroutine at a time (database/sql's rule for
// a driver.Conn).
type stmtCacheConn struct {
	driver.Conn
	stmts map[string]*cachedStmt
}

var (
	_ driver.ConnBeginTx        = (*stmtCacheConn)(nil)
	_ driver.QueryerContext     = (*stmtCacheConn)(nil)
	_ driver.ExecerContext      = (*stmtCacheConn)(nil)
	_ driver.SessionResetter    = (*stmtCacheConn)(nil)
	_ driver.ConnPrepareContext = (*stmtCacheConn)(nil)
)

func (c *stmtCacheConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *stmtCacheConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *stmtCacheConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

// stmt returns the cached statement for q, or a fresh one (closed by the
// caller) when the cached one has open rows.
func (c *stmtCacheConn) stmt(ctx context.Context, q string) (s *cachedStmt, temporary bool, err error) {
	if s, ok := c.stmts[q]; ok && !s.busy {
		return s, false, nil
	} else if ok {
		fresh, err := c.PrepareContext(ctx, q)
		return &cachedStmt{Stmt: fresh}, true, err
	}
	fresh, err := c.PrepareContext(ctx, q)
	if err != nil {
		return nil, false, err
	}
	if len(c.stmts) >= maxCachedStmts {
		for k, old := range c.stmts {
			if !old.busy {
				old.Close()
				delete(c.stmts, k)
				break
			}
		}
	}
	s = &cachedStmt{Stmt: fresh}
	c.stmts[q] = s
	return s, false, nil
}

func (c *stmtCacheConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	s, temporary, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		if temporary {
			s.Close()
		}
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s, temporary: temporary}, nil
}

func (c *stmtCacheConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	s, temporary, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if temporary {
		defer s.Close()
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *stmtCacheConn) Close() error {
	var errs []error
	for _, s := range c.stmts {
		errs = append(errs, s.Close())
	}
	return errors.Join(append(errs, c.Conn.Close())...)
}

// cachedRows frees its statement for reuse when closed.
type cachedRows struct {
	driver.Rows
	s         *cachedStmt
	temporary bool
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.s.busy = false
	if r.temporary {
		err = errors.Join(err, r.s.Close())
	}
	return err
}
