package runtime

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/flowstone-go/flowstone/runtime/internal/store"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

// querier runs the store's statements: the pool or a transaction.
type querier = store.Querier

// backend is the one seam between the engine and a database: the store's
// querier, River's client, and transactions that span both. SQLite and
// PostgreSQL implement it with the same generic code.
type backend interface {
	pool() querier
	inTx(ctx context.Context, fn func(tx txn) error) error
	insertJobs(ctx context.Context, params []river.InsertManyParams) error
	cancelJob(ctx context.Context, id int64) error
	// deleteFinishedJobs deletes at most limit finished jobs (completed,
	// cancelled, discarded) matching where, a River JobDeleteMany
	// predicate, and returns how many it deleted.
	deleteFinishedJobs(ctx context.Context, where string, args river.NamedArgs, limit int) (int, error)
	start(ctx context.Context) error
	// stop stops fetching and waits for the running jobs, or for ctx to
	// end (then it returns ctx's error, the jobs still running).
	stop(ctx context.Context) error
	// stopAndCancel cancels the running jobs' contexts and waits for them
	// to return.
	stopAndCancel(ctx context.Context) error
	close()
	dialect() string
	// clientID names this process's River client, as River records it in
	// the jobs it works.
	clientID() string
	// takeOver makes the jobs running under the dead clients since before
	// horizon available again (discarded when out of attempts) and returns
	// the discarded ones.
	takeOver(ctx context.Context, taken func(*rivertype.JobRow) bool, horizon time.Time, reason string) (discarded []*rivertype.JobRow, n int, err error)
	riverClient() any
}

// txn is a transaction on FlowStone's tables and River's jobs at once.
type txn interface {
	querier
	insertJobs(ctx context.Context, params []river.InsertManyParams) error
	completeJob(ctx context.Context, job *rivertype.JobRow) error
	// recordCommit records fins and commits the transaction, reading the
	// readiness of their dependents in between, in one round trip
	// (store.RecordFinishedCommit); ok is false, with nothing done, where
	// the transaction cannot (SQLite, or one that has begun).
	recordCommit(ctx context.Context, fins []store.Finished) (rec store.Recorded, deps []store.Pending, ok bool, err error)
}

type riverBackend[TDriver riverdriver.Driver[TTx], TTx any] struct {
	name     string
	client   *river.Client[TTx]
	driver   TDriver
	schema   string
	db       querier
	begin    func(ctx context.Context) (TTx, querier, error)
	commit   func(ctx context.Context, tx TTx) error
	rollback func(ctx context.Context, tx TTx) error
	closeDB  func()
	// recordCommit, when set, is txn.recordCommit.
	recordCommit func(ctx context.Context, tx TTx, fins []store.Finished) (store.Recorded, []store.Pending, bool, error)
	// notify, when set, sends River's insert notification for queues in
	// a transaction that inserted jobs available in them (see
	// riverTx.insertJobs).
	notify  func(ctx context.Context, q querier, queues []string) error
	started bool
	// out rides out the database's outages; nil fails at once.
	out *outage
}

func (b *riverBackend[D, T]) pool() querier    { return b.db }
func (b *riverBackend[D, T]) dialect() string  { return b.name }
func (b *riverBackend[D, T]) riverClient() any { return b.client }
func (b *riverBackend[D, T]) close()           { b.closeDB() }

func (b *riverBackend[D, T]) start(ctx context.Context) error {
	b.started = true
	return b.client.Start(ctx)
}

func (b *riverBackend[D, T]) stop(ctx context.Context) error {
	if !b.started {
		return nil
	}
	return b.client.Stop(ctx)
}

func (b *riverBackend[D, T]) stopAndCancel(ctx context.Context) error {
	if !b.started {
		return nil
	}
	return b.client.StopAndCancel(ctx)
}

func (b *riverBackend[D, T]) insertJobs(ctx context.Context, params []river.InsertManyParams) error {
	if len(params) == 0 {
		return nil
	}
	_, err := b.client.InsertManyFast(ctx, params)
	return err
}

func (b *riverBackend[D, T]) cancelJob(ctx context.Context, id int64) error {
	_, err := b.client.JobCancel(ctx, id)
	return err
}

func (b *riverBackend[D, T]) deleteFinishedJobs(ctx context.Context, where string, args river.NamedArgs, limit int) (int, error) {
	res, err := b.client.JobDeleteMany(ctx, river.NewJobDeleteManyParams().
		States(rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded).
		Where(where, args).First(limit))
	if err != nil {
		return 0, err
	}
	return len(res.Jobs), nil
}

// inTx runs fn in a transaction, running it again from the start when it
// collided with another transaction (deadlock, serialization, busy), or
// once the database is back when it could not be reached. A transaction
// whose commit was lost with its connection may have committed: its
// statements guard on the state they change, so running it again is
// harmless.
func (b *riverBackend[D, T]) inTx(ctx context.Context, fn func(tx txn) error) error {
	return b.out.ride(ctx, func(ctx context.Context) error { return b.inTxOnce(ctx, fn) })
}

func (b *riverBackend[D, T]) inTxOnce(ctx context.Context, fn func(tx txn) error) error {
	for attempt := 1; ; attempt++ {
		err := b.tryTx(ctx, fn)
		if err == nil || !store.Retryable(err) || attempt == 8 {
			return err
		}
		if err := sleep(ctx, time.Duration(attempt*attempt)*5*time.Millisecond+time.Duration(rand.IntN(5))*time.Millisecond); err != nil {
			return err
		}
	}
}

// migrateTx runs a migration's statements in a transaction.
func (b *riverBackend[D, T]) migrateTx(ctx context.Context, fn func(q store.Querier) error) error {
	return b.inTx(ctx, func(tx txn) error { return fn(tx) })
}

// sleep waits for d, or returns ctx's error when it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *riverBackend[D, T]) tryTx(ctx context.Context, fn func(tx txn) error) error {
	tx, q, err := b.begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(&riverTx[D, T]{querier: q, b: b, tx: tx}); err != nil {
		_ = b.rollback(context.WithoutCancel(ctx), tx)
		return err
	}
	return b.commit(ctx, tx)
}

type riverTx[TDriver riverdriver.Driver[TTx], TTx any] struct {
	querier
	b  *riverBackend[TDriver, TTx]
	tx TTx
}

// insertJobs inserts jobs in the transaction. On PostgreSQL it also sends
// River's insert notification itself for the queues that get jobs to run
// at once: River's client sends at most one per queue per FetchCooldown
// and drops the others, which loses the wake-up of a job whose transaction
// commits after the fetch the earlier notification caused. A chain's next
// job is inserted a few milliseconds after its predecessor was fetched,
// once the predecessor's result is recorded, so a slightly shorter step
// than the one before had its notification dropped and waited for River's
// next poll (docs/benchmarks.md, "The PostgreSQL chain and River's insert
// notifications").
func (t *riverTx[D, T]) insertJobs(ctx context.Context, params []river.InsertManyParams) error {
	if len(params) == 0 {
		return nil
	}
	if _, err := t.b.client.InsertManyFastTx(ctx, t.tx, params); err != nil {
		return err
	}
	if t.b.notify == nil {
		return nil
	}
	return t.b.notify(ctx, t.querier, availableQueues(params))
}

// availableQueues returns the queues, once each, of the jobs in params
// that River inserts available (not scheduled for later, not pending),
// the ones its client notifies its producers of.
func availableQueues(params []river.InsertManyParams) []string {
	var queues []string
	for _, p := range params {
		opts := river.InsertOpts{}
		if p.InsertOpts != nil {
			opts = *p.InsertOpts
		}
		var argOpts river.InsertOpts
		if a, ok := p.Args.(river.JobArgsWithInsertOpts); ok {
			argOpts = a.InsertOpts()
		}
		if !opts.ScheduledAt.IsZero() || !argOpts.ScheduledAt.IsZero() || opts.Pending {
			continue
		}
		q := cmp.Or(opts.Queue, argOpts.Queue, river.QueueDefault)
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	return queues
}

// completeJob completes job, whichever its kind: River reads only its
// ID and state.
func (t *riverTx[D, T]) completeJob(ctx context.Context, job *rivertype.JobRow) error {
	_, err := river.JobCompleteTx[D](ctx, t.tx, &river.Job[anyArgs]{JobRow: job})
	return err
}

func (t *riverTx[D, T]) recordCommit(ctx context.Context, fins []store.Finished) (store.Recorded, []store.Pending, bool, error) {
	if t.b.recordCommit == nil {
		return store.Recorded{}, nil, false, nil
	}
	return t.b.recordCommit(ctx, t.tx, fins)
}

// anyArgs decodes the args of a job of any kind (as JobCompleteTx returns
// them); it is never inserted.
type anyArgs struct{}

func (anyArgs) Kind() string { return "" }

// openPostgres connects a pool whose search_path is schema and builds the
// River client on it; the migrate it returns creates the schema. A
// readOnly pool's transactions are read-only.
func openPostgres(ctx context.Context, url, schema string, rcfg *river.Config, lines []store.Line, readOnly bool, out *outage, trips *roundTrips) (*riverBackend[*riverpgxv5.Driver, pgx.Tx], func(context.Context) error, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres url: %w", err)
	}
	if schema != "" {
		// Quoted: an unquoted mixed-case name would be folded to lower case.
		pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	}
	if readOnly {
		pcfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	if pcfg.MaxConns < 8 {
		pcfg.MaxConns = 8
	}
	if trips != nil {
		pcfg.ConnConfig.Tracer = trips
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres connect: %w", err)
	}
	driver := riverpgxv5.New(pool)
	rcfg.Schema = schema
	client, err := river.NewClient(driver, rcfg)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	b := &riverBackend[*riverpgxv5.Driver, pgx.Tx]{
		name:   "postgres",
		client: client,
		driver: driver,
		schema: schema,
		db:     store.Pgx(pool),
		// Its BEGIN goes with its first statement (store.PgxLazyTx).
		begin: func(ctx context.Context) (pgx.Tx, querier, error) {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return nil, nil, err
			}
			tx := store.PgxLazyTx(conn)
			return tx, store.Pgx(tx), nil
		},
		commit:   func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) },
		rollback: func(ctx context.Context, tx pgx.Tx) error { return tx.Rollback(ctx) },
		closeDB:  pool.Close,
		out:      out,
	}
	b.recordCommit = func(ctx context.Context, tx pgx.Tx, fins []store.Finished) (store.Recorded, []store.Pending, bool, error) {
		if !store.IsLazyTx(tx) {
			return store.Recorded{}, nil, false, nil
		}
		rec, deps, err := store.Store{}.RecordFinishedCommit(ctx, tx, fins)
		return rec, deps, true, err
	}
	b.notify = func(ctx context.Context, q querier, queues []string) error {
		return store.Store{}.NotifyJobs(ctx, q, schema, queues)
	}
	migrate := func(ctx context.Context) error {
		// One migrator of the schema at a time across processes: a session
		// advisory lock on a dedicated connection.
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return err
		}
		defer conn.Release()
		unlock, err := store.Store{}.LockMigrations(ctx, store.Pgx(conn), schema)
		if err != nil {
			return err
		}
		defer unlock()
		if schema != "" {
			if err := (store.Store{}).CreateSchema(ctx, store.Pgx(conn), schema); err != nil {
				return err
			}
		}
		m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
		if err != nil {
			return err
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("river migrations: %w", err)
		}
		return store.Store{}.Migrate(ctx, b.migrateTx, lines)
	}
	return b, migrate, nil
}

// openSQLite opens the file (or :memory:) with WAL and one connection, as
// River's SQLite driver documents, and builds the River client on it. A
// readOnly connection leaves the journal mode as it is and refuses writes
// (query_only).
func openSQLite(ctx context.Context, path string, rcfg *river.Config, lines []store.Line, readOnly bool, out *outage) (*riverBackend[*riversqlite.Driver, *sql.Tx], func(context.Context) error, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	switch {
	case path == ":memory:":
		dsn = "file::memory:?_pragma=busy_timeout(20000)&_txlock=immediate"
	case readOnly:
		dsn = "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=query_only(1)"
	}
	db := sql.OpenDB(store.SQLiteConnector(dsn))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	// Switching to WAL needs a moment alone with the file: another process
	// busy with it answers SQLITE_BUSY at once, whatever busy_timeout says.
	for attempt := 1; ; attempt++ {
		err := db.PingContext(ctx)
		if err == nil {
			break
		}
		if !store.Retryable(err) || attempt == 20 {
			db.Close()
			return nil, nil, fmt.Errorf("sqlite open %s: %w", path, err)
		}
		if err := sleep(ctx, time.Duration(attempt)*50*time.Millisecond); err != nil {
			db.Close()
			return nil, nil, fmt.Errorf("sqlite open %s: %w", path, err)
		}
	}
	driver := riversqlite.New(db)
	client, err := river.NewClient(driver, rcfg)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	b := &riverBackend[*riversqlite.Driver, *sql.Tx]{
		name:   "sqlite",
		client: client,
		driver: driver,
		db:     store.SQL(db),
		begin: func(ctx context.Context) (*sql.Tx, querier, error) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return nil, nil, err
			}
			return tx, store.SQL(tx), nil
		},
		commit:   func(_ context.Context, tx *sql.Tx) error { return tx.Commit() },
		rollback: func(_ context.Context, tx *sql.Tx) error { return tx.Rollback() },
		closeDB:  func() { db.Close() },
		out:      out,
	}
	migrate := func(ctx context.Context) error {
		m, err := rivermigrate.New(driver, nil)
		if err != nil {
			return err
		}
		// River's migrator is not safe against another process migrating
		// the same file at once: serialise on a lock file beside it.
		if path != ":memory:" {
			unlock, err := lockFile(path + ".migrate-lock")
			if err != nil {
				return err
			}
			defer unlock()
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("river migrations: %w", err)
		}
		return store.Store{}.Migrate(ctx, b.migrateTx, lines)
	}
	return b, migrate, nil
}

// roundTrips counts what a PostgreSQL pool sends, one round trip each:
// statements (BEGIN and COMMIT included), batches and prepares (pgx
// prepares a statement text the first time a connection runs it).
type roundTrips struct{ statements, batches, prepares atomic.Int64 }

func (r *roundTrips) total() int64 {
	return r.statements.Load() + r.batches.Load() + r.prepares.Load()
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.statements.Add(1)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.batches.Add(1)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (r *roundTrips) TracePrepareStart(ctx context.Context, _ *pgx.Conn, _ pgx.TracePrepareStartData) context.Context {
	return ctx
}

func (r *roundTrips) TracePrepareEnd(_ context.Context, _ *pgx.Conn, d pgx.TracePrepareEndData) {
	if !d.AlreadyPrepared {
		r.prepares.Add(1)
	}
}
