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
	var err error
	switch db.dialect {
	case "postgres":
		e.be, _, err = openPostgres(ctx, db.target, e.cfg.Schema, rcfg, true)
	default:
		if db.target != ":memory:" {
			// Opening a missing file would create it.
			if _, serr := os.Stat(db.target); errors.Is(serr, os.ErrNotExist) {
				return fmt.Errorf("%w (sqlite database %s does not exist)", ErrNotInitialised, db.target)
			}
		}
		e.be, _, err = openSQLite(ctx, db.target, rcfg, true)
	}
	if err != nil {
		return err
	}
	if err := e.checkInitialised(ctx); err != nil {
		e.be.close()
		return err
	}
	return nil
}

// checkInitialised returns ErrNotInitialised unless every FlowStone
// migration this program knows has been applied.
func (e *Engine) checkInitialised(ctx context.Context) error {
	where := "the database"
	if e.cfg.Schema != "" {
		where = "schema " + e.cfg.Schema
	}
	var tables int
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'flowstone_migrations'`
	if e.dialect == "postgres" {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'flowstone_migrations'`
	}
	if err := e.be.pool().QueryRow(ctx, q).Scan(&tables); err != nil {
		return err
	}
	if tables == 0 {
		return fmt.Errorf("%w (%s has no FlowStone tables)", ErrNotInitialised, where)
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var applied int
	if err := e.be.pool().QueryRow(ctx, `SELECT count(*) FROM flowstone_migrations`).Scan(&applied); err != nil {
		return err
	}
	if applied < len(ms) {
		return fmt.Errorf("%w (%s has %d of this program's %d FlowStone migrations)", ErrNotInitialised, where, applied, len(ms))
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
