package runtime

// RiverClient returns the River client the engine runs on, for River's own
// tools such as its web view: a *river.Client[pgx.Tx] on PostgreSQL, a
// *river.Client[*sql.Tx] on SQLite. Jobs inserted or changed through it
// bypass FlowStone's bookkeeping; use it to look, not to work.
func (e *Engine) RiverClient() any { return e.be.riverClient() }
