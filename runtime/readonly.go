package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// openReadOnly connects without creating or migrating anything, and
// checks that FlowStone's tables are there and up to date.
func (e *Engine) openReadOnly(ctx context.Context, db dbURL) error {
	rcfg := e.riverConfig(db.dialect) // no workers, no periodic jobs
	lines := e.storeLines()
	var err error
	switch db.dialect {
	case "postgres":
		e.be, _, err = openPostgres(ctx, db.target, e.cfg.Schema, rcfg, lines, true, e.out, nil)
	default:
		if db.target != ":memory:" {
			// Opening a missing file would create it.
			if _, serr := os.Stat(db.target); errors.Is(serr, os.ErrNotExist) {
				return fmt.Errorf("%w (sqlite database %s does not exist)", ErrNotInitialised, db.target)
			}
		}
		e.be, _, err = openSQLite(ctx, db.target, rcfg, lines, true, e.out)
	}
	if err != nil {
		return err
	}
	var missing string
	err = e.out.waitForDatabase(ctx, e.cfg.WaitForDatabase, func(ctx context.Context) (err error) {
		missing, err = e.st.Missing(ctx, e.be.pool(), db.dialect, lines)
		return err
	})
	if err == nil && missing != "" {
		where := "the database"
		if e.cfg.Schema != "" {
			where = "schema " + e.cfg.Schema
		}
		err = fmt.Errorf("%w (%s has %s)", ErrNotInitialised, where, missing)
	}
	if err != nil {
		e.be.close()
		return err
	}
	return nil
}

// writable refuses to write from a read-only engine.
func (e *Engine) writable() error {
	if e.cfg.ReadOnly {
		return fmt.Errorf("%w: open it without Config.ReadOnly to write", ErrReadOnly)
	}
	return nil
}
