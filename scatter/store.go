package scatter

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the store's migrations: NNN_description.sql files
// that create its tables, for the engine to apply (see
// strategy.Migrator).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	return sub
}

// Item statuses.
const (
	ItemPending   = "pending"
	ItemSucceeded = "succeeded"
	ItemFailed    = "failed"
	ItemCancelled = "cancelled"
)

// Store persists barriers and item results. It holds no state: every
// method takes the DB (or transaction) to work in.
type Store struct{}

// Barrier is one scatter's counters.
type Barrier struct {
	Ref
	Total, Batch, Batches int
	Done, Failed          int
	NextBatch             int
	NextAt                time.Time
	Status, Error         string
	CreatedAt, FinishedAt time.Time
	// ByBatch: the items are counted on the batch rows (RecordBatch), not
	// on the barrier (Count); every scatter started since migration 003.
	ByBatch bool
}

// Item is one stored item.
type Item struct {
	Index  int
	Key    string
	Raw    json.RawMessage
	Status string
}

// ItemResult is the outcome of running one item.
type ItemResult struct {
	Index int
	// Key and Raw are the item's key and JSON, stored with its result.
	Key      string
	Raw      json.RawMessage
	Value    json.RawMessage // when Err is empty
	Err      string
	Attempts int
	// Started and Finished bound the item's run (its attempts included).
	Started, Finished time.Time
}

// createChunk is how many batch rows one INSERT of Create writes.
const createChunk = 100

// Create stores the barrier and the items, one row per batch (the batch's
// items as a JSON array, and their keys), in multi-row INSERTs of
// createChunk batches: no row per item, which gets its row with its result.
func (Store) Create(ctx context.Context, db DB, b Barrier, items []json.RawMessage, keys []string) error {
	if _, err := db.Exec(ctx, `INSERT INTO flowstone_scatter_barriers
		(run_id, asset, partition_key, total, batch, batches, next_batch, next_at, status, created_at, by_batch)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		b.Run, b.Asset, b.Partition, b.Total, b.Batch, b.Batches, b.NextBatch, b.NextAt.UnixMicro(), Running, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("create barrier: %w", err)
	}
	size := max(b.Batch, 1)
	batches := (len(items) + size - 1) / size
	var q, arr strings.Builder
	for first := 0; first < batches; first += createChunk {
		last := min(first+createChunk, batches)
		q.Reset()
		q.WriteString(`INSERT INTO flowstone_scatter_batches (run_id, asset, partition_key, batch, items, item_keys) VALUES `)
		args := make([]any, 0, 6*(last-first))
		for n := first; n < last; n++ {
			if n > first {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?)")
			from, to := n*size, min((n+1)*size, len(items))
			arr.Reset()
			arr.WriteByte('[')
			for i := from; i < to; i++ {
				if i > from {
					arr.WriteByte(',')
				}
				arr.Write(items[i])
			}
			arr.WriteByte(']')
			var keyArg any
			if keys != nil {
				data, err := json.Marshal(keys[from:to])
				if err != nil {
					return fmt.Errorf("store item keys: %w", err)
				}
				keyArg = string(data)
			}
			args = append(args, b.Run, b.Asset, b.Partition, n, arr.String(), keyArg)
		}
		if _, err := db.Exec(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store items: %w", err)
		}
	}
	return nil
}

// Barrier reads ref's barrier. The done count of a scatter that counts
// on its batch rows is their sum.
func (Store) Barrier(ctx context.Context, db DB, ref Ref) (Barrier, bool, error) {
	b := Barrier{Ref: ref}
	var nextAt, created int64
	var finished sql.NullInt64
	var byBatch int
	err := db.QueryRow(ctx, `SELECT total, batch, batches,
		CASE WHEN r.by_batch = 1 THEN (SELECT coalesce(sum(b.done), 0) FROM flowstone_scatter_batches b
			WHERE b.run_id = r.run_id AND b.asset = r.asset AND b.partition_key = r.partition_key) ELSE r.done END,
		failed, next_batch, next_at, status, error, created_at, finished_at, by_batch
		FROM flowstone_scatter_barriers r WHERE run_id = ? AND asset = ? AND partition_key = ?`, ref.Run, ref.Asset, ref.Partition).
		Scan(&b.Total, &b.Batch, &b.Batches, &b.Done, &b.Failed, &b.NextBatch, &nextAt, &b.Status, &b.Error, &created, &finished, &byBatch)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	b.NextAt, b.CreatedAt, b.ByBatch = time.UnixMicro(nextAt), time.UnixMicro(created), byBatch == 1
	if finished.Valid {
		b.FinishedAt = time.UnixMicro(finished.Int64)
	}
	return b, true, nil
}

// Batch is what PendingItems reads of a batch.
type Batch struct {
	// Items are those with no result yet; none once the barrier is no
	// longer running.
	Items []Item
	// Size is how many items the batch has in all.
	Size int
	// Running: the barrier is running.
	Running bool
	// ByBatch: the scatter counts on its batch rows (Barrier.ByBatch).
	ByBatch bool
}

// PendingItems reads batch n, whose indexes are [from, to): its items
// that have no result yet, none once the barrier is no longer running
// (failed or cancelled: the items not run are cancelled with it).
func (st Store) PendingItems(ctx context.Context, db DB, ref Ref, n, from, to int) (Batch, error) {
	var raw, status string
	var keysRaw sql.NullString
	var byBatch, counted int
	err := db.QueryRow(ctx, `SELECT b.items, b.item_keys, r.status, r.by_batch, b.done FROM flowstone_scatter_batches b
		JOIN flowstone_scatter_barriers r ON r.run_id = b.run_id AND r.asset = b.asset AND r.partition_key = b.partition_key
		WHERE b.run_id = ? AND b.asset = ? AND b.partition_key = ? AND b.batch = ?`,
		ref.Run, ref.Asset, ref.Partition, n).Scan(&raw, &keysRaw, &status, &byBatch, &counted)
	if errors.Is(err, sql.ErrNoRows) {
		items, err := st.legacyPendingItems(ctx, db, ref, from, to)
		return Batch{Items: items, Size: to - from, Running: len(items) > 0}, err
	}
	if err != nil {
		return Batch{}, fmt.Errorf("read batch %d: %w", n, err)
	}
	out := Batch{Running: status == Running, ByBatch: byBatch == 1}
	if !out.Running {
		return out, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal([]byte(raw), &items); err != nil {
		return Batch{}, fmt.Errorf("decode batch %d: %w", n, err)
	}
	out.Size = len(items)
	var keys []string
	if keysRaw.Valid {
		if err := json.Unmarshal([]byte(keysRaw.String), &keys); err != nil || len(keys) != len(items) {
			return Batch{}, fmt.Errorf("decode batch %d's item keys: %d keys for %d items, %v", n, len(keys), len(items), err)
		}
	}
	done := map[int]bool{}
	// A batch counted on its row that counted nothing has no result yet
	// (its first delivery): no need to look.
	if !out.ByBatch || counted > 0 {
		if done, err = st.recorded(ctx, db, ref, from, to); err != nil {
			return Batch{}, err
		}
	}
	out.Items = make([]Item, 0, len(items)-len(done))
	for i, it := range items {
		idx := from + i
		if done[idx] {
			continue
		}
		key := strconv.Itoa(idx)
		if keys != nil {
			key = keys[i]
		}
		out.Items = append(out.Items, Item{Index: idx, Key: key, Raw: it, Status: ItemPending})
	}
	return out, nil
}

// recorded returns the indexes in [from, to) that have a result.
func (Store) recorded(ctx context.Context, db DB, ref Ref, from, to int) (map[int]bool, error) {
	done := map[int]bool{}
	rs, err := db.Query(ctx, `SELECT idx FROM flowstone_scatter_items
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND idx >= ? AND idx < ?`,
		ref.Run, ref.Asset, ref.Partition, from, to)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var idx int
		if err := rs.Scan(&idx); err != nil {
			return nil, err
		}
		done[idx] = true
	}
	return done, rs.Err()
}

// legacyPendingItems reads the pending item rows of a scatter started
// before items were stored by batch.
func (Store) legacyPendingItems(ctx context.Context, db DB, ref Ref, from, to int) ([]Item, error) {
	rs, err := db.Query(ctx, `SELECT idx, item_key, item, status FROM flowstone_scatter_items
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND idx >= ? AND idx < ? AND status = ? ORDER BY idx`,
		ref.Run, ref.Asset, ref.Partition, from, to, ItemPending)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Item
	for rs.Next() {
		var it Item
		var raw string
		if err := rs.Scan(&it.Index, &it.Key, &raw, &it.Status); err != nil {
			return nil, err
		}
		it.Raw = json.RawMessage(raw)
		out = append(out, it)
	}
	return out, rs.Err()
}

// recordChunk bounds the rows of one Record statement: 12 parameters a
// row stays well under SQLite's 32,766 and PostgreSQL's 65,535.
const recordChunk = 1000

// Record stores results of items not yet recorded and reports how many it
// stored and how many of those failed: an item recorded before (a batch
// rerun after its worker died) is not counted twice. The results are
// written by one statement per recordChunk of them: a multi-row INSERT
// that leaves a row already recorded alone (ON CONFLICT ... DO UPDATE
// only a pending row, which only scatters started before items were
// stored by batch have) and returns the rows it wrote.
func (Store) Record(ctx context.Context, db DB, ref Ref, results []ItemResult) (stored, failed int, err error) {
	for start := 0; start < len(results); start += recordChunk {
		s, f, err := recordChunkOf(ctx, db, ref, results[start:min(start+recordChunk, len(results))])
		if err != nil {
			return 0, 0, err
		}
		stored, failed = stored+s, failed+f
	}
	return stored, failed, nil
}

func recordChunkOf(ctx context.Context, db DB, ref Ref, results []ItemResult) (stored, failed int, err error) {
	if len(results) == 0 {
		return 0, 0, nil
	}
	var q strings.Builder
	q.Grow(40*len(results) + 500)
	q.WriteString(`INSERT INTO flowstone_scatter_items (run_id, asset, partition_key, idx, item_key, item, status, value, error, attempts, started_at, finished_at) VALUES `)
	args := make([]any, 0, 12*len(results))
	for i, r := range results {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		status, value := ItemSucceeded, any(string(r.Value))
		if r.Err != "" {
			status, value = ItemFailed, nil
		}
		key := r.Key
		if key == "" {
			key = strconv.Itoa(r.Index)
		}
		args = append(args, ref.Run, ref.Asset, ref.Partition, r.Index, key, string(r.Raw), status, value, r.Err, r.Attempts,
			r.Started.UnixMicro(), r.Finished.UnixMicro())
	}
	q.WriteString(` ON CONFLICT (run_id, asset, partition_key, idx) DO UPDATE SET status = excluded.status,
		value = excluded.value, error = excluded.error, attempts = excluded.attempts,
		started_at = excluded.started_at, finished_at = excluded.finished_at
		WHERE flowstone_scatter_items.status = '` + ItemPending + `'
		RETURNING status`)
	rs, err := db.Query(ctx, q.String(), args...)
	if err != nil {
		return 0, 0, fmt.Errorf("record items %d to %d: %w", results[0].Index, results[len(results)-1].Index, err)
	}
	defer rs.Close()
	for rs.Next() {
		var status string
		if err := rs.Scan(&status); err != nil {
			return 0, 0, err
		}
		stored++
		if status == ItemFailed {
			failed++
		}
	}
	if err := rs.Err(); err != nil {
		return 0, 0, fmt.Errorf("record items %d to %d: %w", results[0].Index, results[len(results)-1].Index, err)
	}
	return stored, failed, nil
}

// Count adds to the barrier's counters and returns it, for a scatter
// counted on its barrier (not Barrier.ByBatch); the row lock makes
// concurrent batches count one after another.
func (Store) Count(ctx context.Context, db DB, ref Ref, done, failed int) (Barrier, error) {
	b := Barrier{Ref: ref}
	var nextAt int64
	err := db.QueryRow(ctx, `UPDATE flowstone_scatter_barriers SET done = done + ?, failed = failed + ?
		WHERE run_id = ? AND asset = ? AND partition_key = ?
		RETURNING total, batch, batches, done, failed, next_batch, next_at, status`,
		done, failed, ref.Run, ref.Asset, ref.Partition).
		Scan(&b.Total, &b.Batch, &b.Batches, &b.Done, &b.Failed, &b.NextBatch, &nextAt, &b.Status)
	b.NextAt = time.UnixMicro(nextAt)
	return b, err
}

// RecordBatch records results of batch n, of size items in all, and
// counts those not recorded before on the batch's row, which it marks
// finished once each of its items has a result: Record's ON CONFLICT
// tells which are new, so a batch run again counts nothing twice. Failed
// items are added to the barrier's failed count as well, last (its row is
// shared by every batch, and only a group that failed items takes its
// lock). For a scatter counted on its batch rows (Barrier.ByBatch).
func (st Store) RecordBatch(ctx context.Context, db DB, ref Ref, n, size int, results []ItemResult) (stored, failed int, err error) {
	if stored, failed, err = st.Record(ctx, db, ref, results); err != nil || stored == 0 {
		return stored, failed, err
	}
	if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_batches SET done = done + ?, failed = failed + ?,
		finished = CASE WHEN done + ? >= ? THEN 1 ELSE 0 END
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND batch = ?`,
		stored, failed, stored, size, ref.Run, ref.Asset, ref.Partition, n); err != nil {
		return 0, 0, fmt.Errorf("count batch %d: %w", n, err)
	}
	if failed > 0 {
		if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET failed = failed + ?
			WHERE run_id = ? AND asset = ? AND partition_key = ?`, failed, ref.Run, ref.Asset, ref.Partition); err != nil {
			return 0, 0, fmt.Errorf("count failed items: %w", err)
		}
	}
	return stored, failed, nil
}

// State is what decides a scatter counted on its batch rows.
type State struct {
	Status        string
	Total, Failed int
	// Open: some batch has items without a result.
	Open bool
}

// State reads the barrier's status and failed count and whether any
// batch is unfinished, in one statement (the open batches' partial index
// answers the last).
func (Store) State(ctx context.Context, db DB, ref Ref) (State, error) {
	var s State
	var open int
	err := db.QueryRow(ctx, `SELECT r.status, r.total, r.failed,
		CASE WHEN EXISTS (SELECT 1 FROM flowstone_scatter_batches b
			WHERE b.run_id = r.run_id AND b.asset = r.asset AND b.partition_key = r.partition_key AND b.finished = 0) THEN 1 ELSE 0 END
		FROM flowstone_scatter_barriers r WHERE r.run_id = ? AND r.asset = ? AND r.partition_key = ?`,
		ref.Run, ref.Asset, ref.Partition).Scan(&s.Status, &s.Total, &s.Failed, &open)
	s.Open = open == 1
	return s, err
}

// Settle sets the final status of a running barrier counted on its batch
// rows, and its done count from them; it reports false, changing
// nothing, when the barrier is no longer running: exactly one caller
// settles it.
func (Store) Settle(ctx context.Context, db DB, ref Ref, status, errMsg string) (bool, error) {
	n, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET status = ?, error = ?, finished_at = ?,
		done = (SELECT coalesce(sum(b.done), 0) FROM flowstone_scatter_batches b
			WHERE b.run_id = flowstone_scatter_barriers.run_id AND b.asset = flowstone_scatter_barriers.asset
			AND b.partition_key = flowstone_scatter_barriers.partition_key)
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
		status, errMsg, time.Now().UnixMicro(), ref.Run, ref.Asset, ref.Partition, Running)
	return n == 1, err
}

// ClaimSuccessor marks finished batch n as the one that launches a
// successor, once: false when it is not finished or did already.
func (Store) ClaimSuccessor(ctx context.Context, db DB, ref Ref, n int) (bool, error) {
	c, err := db.Exec(ctx, `UPDATE flowstone_scatter_batches SET claimed = 1
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND batch = ? AND finished = 1 AND claimed = 0`,
		ref.Run, ref.Asset, ref.Partition, n)
	return c == 1, err
}

// ClaimBatch takes the next batch not yet launched, and its launch time:
// the barrier's next_at, spaced by spacing.
func (Store) ClaimBatch(ctx context.Context, db DB, ref Ref, now time.Time, spacing time.Duration) (batch int, at time.Time, ok bool, err error) {
	var next, nextAt int64
	err = db.QueryRow(ctx, `UPDATE flowstone_scatter_barriers
		SET next_batch = next_batch + 1, next_at = CASE WHEN next_at > ? THEN next_at ELSE ? END + ?
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND next_batch < batches AND status = ?
		RETURNING next_batch, next_at`,
		now.UnixMicro(), now.UnixMicro(), spacing.Microseconds(), ref.Run, ref.Asset, ref.Partition, Running).Scan(&next, &nextAt)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, false, nil
	}
	if err != nil {
		return 0, time.Time{}, false, err
	}
	return int(next) - 1, time.UnixMicro(nextAt).Add(-spacing), true, nil
}

// Finish sets the barrier's final status; items not yet run are cancelled
// when it failed (PendingItems returns none; the pending rows of a scatter
// started before items were stored by batch are marked cancelled).
func (Store) Finish(ctx context.Context, db DB, ref Ref, status, errMsg string) error {
	if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET status = ?, error = ?, finished_at = ?
		WHERE run_id = ? AND asset = ? AND partition_key = ?`,
		status, errMsg, time.Now().UnixMicro(), ref.Run, ref.Asset, ref.Partition); err != nil {
		return err
	}
	if status == Failed {
		if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_items SET status = ?
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ?`,
			ItemCancelled, ref.Run, ref.Asset, ref.Partition, ItemPending); err != nil {
			return err
		}
	}
	return nil
}

// Gather returns the successful values in source order as a JSON array,
// and the outcome of each of the total items as a JSON array of
// flowstone.Outcome: an item without a result is skipped.
func (Store) Gather(ctx context.Context, db DB, ref Ref, total int) (values, outcomes json.RawMessage, err error) {
	rs, err := db.Query(ctx, `SELECT idx, status, value, error FROM flowstone_scatter_items
		WHERE run_id = ? AND asset = ? AND partition_key = ? ORDER BY idx`, ref.Run, ref.Asset, ref.Partition)
	if err != nil {
		return nil, nil, err
	}
	defer rs.Close()
	var vb, ob strings.Builder
	vb.WriteByte('[')
	ob.WriteByte('[')
	nv, no := 0, 0
	skip := func(to int) {
		for ; no < to; no++ {
			if no > 0 {
				ob.WriteByte(',')
			}
			ob.WriteString(`{"value":null,"skipped":true}`)
		}
	}
	for rs.Next() {
		var idx int
		var status, msg string
		var value sql.NullString
		if err := rs.Scan(&idx, &status, &value, &msg); err != nil {
			return nil, nil, err
		}
		skip(idx)
		if no > 0 {
			ob.WriteByte(',')
		}
		no++
		switch status {
		case ItemSucceeded:
			if nv > 0 {
				vb.WriteByte(',')
			}
			nv++
			vb.WriteString(value.String)
			ob.WriteString(`{"value":` + value.String + `}`)
		case ItemFailed:
			e, _ := json.Marshal(msg)
			ob.WriteString(`{"value":null,"error":` + string(e) + `}`)
		default:
			ob.WriteString(`{"value":null,"skipped":true}`)
		}
	}
	if err := rs.Err(); err != nil {
		return nil, nil, err
	}
	skip(total)
	vb.WriteByte(']')
	ob.WriteByte(']')
	return json.RawMessage(vb.String()), json.RawMessage(ob.String()), nil
}

// Cancelled is the status of a barrier whose run was cancelled.
const Cancelled = "cancelled"

// CancelRun finishes the running barriers of a cancelled run: their items
// not yet run are cancelled with them (PendingItems returns none).
func CancelRun(ctx context.Context, db DB, run string) error {
	if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_items SET status = ?
		WHERE run_id = ? AND status = ?`, ItemCancelled, run, ItemPending); err != nil {
		return err
	}
	_, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET status = ?, error = 'run cancelled', finished_at = ?
		WHERE run_id = ? AND status = ?`, Cancelled, time.Now().UnixMicro(), run, Running)
	return err
}

// DeleteRuns deletes the barriers and items of runs (Engine.Prune, for
// finished runs).
func DeleteRuns(ctx context.Context, db DB, runs []string) error {
	if len(runs) == 0 {
		return nil
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(runs)), ", ")
	args := make([]any, len(runs))
	for i, r := range runs {
		args[i] = r
	}
	for _, table := range []string{"flowstone_scatter_items", "flowstone_scatter_batches", "flowstone_scatter_barriers"} {
		if _, err := db.Exec(ctx, `DELETE FROM `+table+` WHERE run_id IN (`+in+`)`, args...); err != nil {
			return err
		}
	}
	return nil
}
