package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// A transaction's retry pause ends when its context does: a cancelled
// request does not wait out the backoff.
func TestRetryPauseEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleep(ctx, 1<<62); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep: %v, want context.Canceled", err)
	}
}

// On PostgreSQL every transaction that inserts a job to run at once wakes
// River's producers, however soon after another: River's client sends at
// most one insert notification per queue per FetchCooldown (an hour here),
// and a job whose notification it dropped waited for the next poll.
func TestEveryInsertWakesRiver(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("no PostgreSQL")
	}
	url, schema := pg.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	e, err := Open(ctx, Config{Database: url, Schema: schema, NoWorkers: true, PollInterval: time.Hour, FetchCooldown: time.Hour,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.WithoutCancel(ctx))
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{schema + ".river_insert"}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	const inserts = 3
	for i := range inserts {
		err := e.be.inTx(ctx, func(tx txn) error {
			return tx.insertJobs(ctx, []river.InsertManyParams{backfillJob("p", fmt.Sprint("b", i))})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range inserts {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("notification %d of %d: %v", i+1, inserts, err)
		}
		if n.Payload != `{"queue": "default"}` {
			t.Fatalf("notification %d: payload %s", i+1, n.Payload)
		}
	}
}

// River notifies its producers of the jobs it inserts available; so does
// the engine, once per queue.
func TestAvailableQueues(t *testing.T) {
	t.Parallel()
	later := time.Now().Add(time.Hour)
	params := []river.InsertManyParams{
		{Args: backfillArgs{}},
		{Args: backfillArgs{}, InsertOpts: &river.InsertOpts{Queue: "etl"}},
		{Args: backfillArgs{}, InsertOpts: &river.InsertOpts{Queue: "etl"}},
		{Args: backfillArgs{}, InsertOpts: &river.InsertOpts{Queue: "later", ScheduledAt: later}},
		{Args: backfillArgs{}, InsertOpts: &river.InsertOpts{Queue: "pending", Pending: true}},
	}
	if got, want := availableQueues(params), []string{river.QueueDefault, "etl"}; !slices.Equal(got, want) {
		t.Fatalf("availableQueues = %v, want %v", got, want)
	}
}

// Transactions (on PostgreSQL pipelined with their BEGIN,
// store.PgxLazyTx) surface a failing statement's error, whether it is the
// first or a later one, keep nothing of what failed, and leave the pool
// usable: more failures than the pool has connections, then transactions
// that commit.
func TestTransactionsThatFailLeaveThePoolUsable(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		e := openEngine(t, db.config(t))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.be.pool().Exec(ctx, `CREATE TABLE hold_t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL CHECK (v < 10))`); err != nil {
			t.Fatal(err)
		}
		add := func(q querier, id, v int) error {
			_, err := q.Exec(ctx, `INSERT INTO hold_t (id, v) VALUES (?, ?)`, id, v)
			return err
		}
		// Breaks the check on the row whose v is 2, after updating the
		// one whose v is 1.
		bad := func(q querier) error {
			_, err := q.Exec(ctx, `UPDATE hold_t SET v = v + 8`)
			return err
		}
		if err := e.be.inTx(ctx, func(tx txn) error {
			if err := add(tx, 1, 1); err != nil {
				return err
			}
			return add(tx, 2, 2)
		}); err != nil {
			t.Fatal(err)
		}
		for i := range 20 {
			if err := e.be.inTx(ctx, func(tx txn) error { return bad(tx) }); err == nil {
				t.Fatal("a failing first statement: no error")
			}
			if err := e.be.inTx(ctx, func(tx txn) error {
				if err := add(tx, 100+i, 1); err != nil {
					return err
				}
				return bad(tx)
			}); err == nil {
				t.Fatal("a failing later statement: no error")
			}
		}
		if err := e.be.inTx(ctx, func(tx txn) error { return add(tx, 3, 3) }); err != nil {
			t.Fatal(err)
		}
		var n, sum int
		if err := e.be.pool().QueryRow(ctx, `SELECT count(*), sum(v) FROM hold_t`).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != 3 || sum != 6 {
			t.Fatalf("%d rows summing to %d, want 3 summing to 6 (nothing of the failed transactions)", n, sum)
		}
	})
}
