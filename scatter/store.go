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

// Layout is where a scatter counts its items and stores their results:
// fixed when it starts (the barrier's by_batch column), so a scatter in
// flight across an upgrade finishes as it started.
type Layout int

const (
	// OnBarrier: items counted on the barrier, results in item rows
	// (flowstone_scatter_items); scatters started before migration 003.
	OnBarrier Layout = 0
	// ItemRows: items counted on their batch rows, results in item rows;
	// scatters started before migration 004.
	ItemRows Layout = 1
	// BatchRows: items counted and their results stored on their batch
	// rows (the results column, one JSON array a batch); every scatter
	// started since migration 004.
	BatchRows Layout = 2
)

// Barrier is one scatter's counters.
type Barrier struct {
	Ref
	Total, Batch, Batches int
	Done, Failed          int
	NextBatch             int
	NextAt                time.Time
	Status, Error         string
	CreatedAt, FinishedAt time.Time
	// Layout: where the items are counted and their results stored.
	Layout Layout
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
// createChunk batches: no row per item. The scatter's layout is BatchRows:
// the items' results will be stored on the same rows.
func (Store) Create(ctx context.Context, db DB, b Barrier, items []json.RawMessage, keys []string) error {
	if _, err := db.Exec(ctx, `INSERT INTO flowstone_scatter_barriers
		(run_id, asset, partition_key, total, batch, batches, next_batch, next_at, status, created_at, by_batch)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.Run, b.Asset, b.Partition, b.Total, b.Batch, b.Batches, b.NextBatch, b.NextAt.UnixMicro(), Running, time.Now().UnixMicro(), int(BatchRows)); err != nil {
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
	var layout int
	err := db.QueryRow(ctx, `SELECT total, batch, batches,
		CASE WHEN r.by_batch > 0 THEN (SELECT coalesce(sum(b.done), 0) FROM flowstone_scatter_batches b
			WHERE b.run_id = r.run_id AND b.asset = r.asset AND b.partition_key = r.partition_key) ELSE r.done END,
		failed, next_batch, next_at, status, error, created_at, finished_at, by_batch
		FROM flowstone_scatter_barriers r WHERE run_id = ? AND asset = ? AND partition_key = ?`, ref.Run, ref.Asset, ref.Partition).
		Scan(&b.Total, &b.Batch, &b.Batches, &b.Done, &b.Failed, &b.NextBatch, &nextAt, &b.Status, &b.Error, &created, &finished, &layout)
	if errors.Is(err, sql.ErrNoRows) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	b.NextAt, b.CreatedAt, b.Layout = time.UnixMicro(nextAt), time.UnixMicro(created), Layout(layout)
	if finished.Valid {
		b.FinishedAt = time.UnixMicro(finished.Int64)
	}
	return b, true, nil
}

// Batch is what PendingItems reads of a batch.
type Batch struct {
	// N is the batch's number and From the index of its first item.
	N, From int
	// Items are those with no result yet; none once the barrier is no
	// longer running.
	Items []Item
	// Size is how many items the batch has in all.
	Size int
	// Running: the barrier is running.
	Running bool
	// Layout: where the scatter counts its items and stores their results.
	Layout Layout
}

// PendingItems reads batch n, whose indexes are [from, to): its items
// that have no result yet, none once the barrier is no longer running
// (failed or cancelled: the items not run are cancelled with it). In the
// BatchRows layout the items with a result are the first done of the
// batch (RecordBatch appends in item order), so the row alone tells.
func (st Store) PendingItems(ctx context.Context, db DB, ref Ref, n, from, to int) (Batch, error) {
	var raw, status string
	var keysRaw sql.NullString
	var layout, counted int
	err := db.QueryRow(ctx, `SELECT b.items, b.item_keys, r.status, r.by_batch, b.done FROM flowstone_scatter_batches b
		JOIN flowstone_scatter_barriers r ON r.run_id = b.run_id AND r.asset = b.asset AND r.partition_key = b.partition_key
		WHERE b.run_id = ? AND b.asset = ? AND b.partition_key = ? AND b.batch = ?`,
		ref.Run, ref.Asset, ref.Partition, n).Scan(&raw, &keysRaw, &status, &layout, &counted)
	if errors.Is(err, sql.ErrNoRows) {
		items, err := st.legacyPendingItems(ctx, db, ref, from, to)
		return Batch{N: n, From: from, Items: items, Size: to - from, Running: len(items) > 0}, err
	}
	if err != nil {
		return Batch{}, fmt.Errorf("read batch %d: %w", n, err)
	}
	out := Batch{N: n, From: from, Running: status == Running, Layout: Layout(layout)}
	if !out.Running {
		return out, nil
	}
	items, err := splitArray([]byte(raw))
	if err != nil {
		return Batch{}, fmt.Errorf("decode batch %d: %w", n, err)
	}
	out.Size = len(items)
	var keys []string
	if keysRaw.Valid {
		if err := json.Unmarshal([]byte(keysRaw.String), &keys); err != nil || len(keys) != len(items) {
			return Batch{}, fmt.Errorf("decode batch %d's item keys: %d keys for %d items, %v", n, len(keys), len(items), err)
		}
	}
	first, done := 0, map[int]bool(nil)
	switch {
	case out.Layout == BatchRows:
		first = min(counted, len(items))
	// A batch counted on its row that counted nothing has no result yet
	// (its first delivery): no need to look.
	case out.Layout == OnBarrier || counted > 0:
		if done, err = st.recorded(ctx, db, ref, from, to); err != nil {
			return Batch{}, err
		}
	}
	out.Items = make([]Item, 0, len(items)-first-len(done))
	for i := first; i < len(items); i++ {
		idx, it := from+i, items[i]
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

// RecordBatch records a group of results of batch b, not recorded
// before, and counts them on the batch's row, which it marks finished
// once each of its items has a result; failed items are added to the
// barrier's failed count as well, last (its row is shared by every
// batch, and only a group that failed items takes its lock). It reports
// how many results it stored and how many of those failed: none when the
// group was recorded before (a batch run again after its worker died, or
// by two workers at once), so nothing is counted twice. For a scatter
// counted on its batch rows (b.Layout ItemRows or BatchRows).
//
// In the BatchRows layout the results are a group of consecutive items
// following those the batch had recorded when it was read: they are
// appended to the batch row's results in the statement that counts them,
// one row written for the group, by a compare-and-set on its done count.
// When another delivery of the batch recorded some of them meanwhile,
// only the results of the items after those are appended.
func (st Store) RecordBatch(ctx context.Context, db DB, ref Ref, b Batch, results []ItemResult) (stored, failed int, err error) {
	if len(results) == 0 {
		return 0, 0, nil
	}
	if b.Layout != BatchRows {
		return st.recordItemRows(ctx, db, ref, b.N, b.Size, results)
	}
	for i, r := range results {
		if r.Index != results[0].Index+i {
			return 0, 0, fmt.Errorf("record batch %d: item %d follows item %d", b.N, r.Index, results[0].Index+i-1)
		}
	}
	var buf []byte
	for len(results) > 0 {
		first := results[0].Index
		buf, failed = buf[:0], 0
		for i, r := range results {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = appendRecord(buf, r)
			if r.Err != "" {
				failed++
			}
		}
		n, err := db.Exec(ctx, `UPDATE flowstone_scatter_batches
			SET results = coalesce(substr(results, 1, length(results) - 1) || ',', '[') || ? || ']',
			done = done + ?, failed = failed + ?, finished = CASE WHEN done + ? >= ? THEN 1 ELSE 0 END
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND batch = ? AND done = ?`,
			string(buf), len(results), failed, len(results), b.Size, ref.Run, ref.Asset, ref.Partition, b.N, first-b.From)
		if err != nil {
			return 0, 0, fmt.Errorf("record items %d to %d: %w", first, first+len(results)-1, err)
		}
		if n == 1 {
			break
		}
		// Another delivery of the batch recorded items since this one
		// read it: keep the results of the items after them.
		var done int
		if err := db.QueryRow(ctx, `SELECT done FROM flowstone_scatter_batches
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND batch = ?`,
			ref.Run, ref.Asset, ref.Partition, b.N).Scan(&done); err != nil {
			return 0, 0, fmt.Errorf("read batch %d: %w", b.N, err)
		}
		if done < first-b.From {
			return 0, 0, fmt.Errorf("record batch %d: items %d to %d follow item %d, the last recorded",
				b.N, first, first+len(results)-1, b.From+done-1)
		}
		results = results[min(b.From+done-first, len(results)):]
	}
	if len(results) == 0 {
		return 0, 0, nil
	}
	if failed > 0 {
		if err := st.countFailed(ctx, db, ref, failed); err != nil {
			return 0, 0, err
		}
	}
	return len(results), failed, nil
}

// recordItemRows is RecordBatch for a scatter that stores its results in
// item rows (ItemRows): Record's ON CONFLICT tells which are new.
func (st Store) recordItemRows(ctx context.Context, db DB, ref Ref, n, size int, results []ItemResult) (stored, failed int, err error) {
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
		if err := st.countFailed(ctx, db, ref, failed); err != nil {
			return 0, 0, err
		}
	}
	return stored, failed, nil
}

func (Store) countFailed(ctx context.Context, db DB, ref Ref, failed int) error {
	if _, err := db.Exec(ctx, `UPDATE flowstone_scatter_barriers SET failed = failed + ?
		WHERE run_id = ? AND asset = ? AND partition_key = ?`, failed, ref.Run, ref.Asset, ref.Partition); err != nil {
		return fmt.Errorf("count failed items: %w", err)
	}
	return nil
}

// appendRecord appends r as the JSON object a BatchRows batch stores for
// it (see ItemRecord): idx, key, status, attempts, started_at,
// finished_at, then value or error.
func appendRecord(buf []byte, r ItemResult) []byte {
	buf = append(buf, `{"idx":`...)
	buf = strconv.AppendInt(buf, int64(r.Index), 10)
	buf = append(buf, `,"key":`...)
	if r.Key == "" {
		buf = append(buf, '"')
		buf = strconv.AppendInt(buf, int64(r.Index), 10)
		buf = append(buf, '"')
	} else {
		buf = appendString(buf, r.Key)
	}
	status := ItemSucceeded
	if r.Err != "" {
		status = ItemFailed
	}
	buf = append(buf, `,"status":"`...)
	buf = append(buf, status...)
	buf = append(buf, `","attempts":`...)
	buf = strconv.AppendInt(buf, int64(r.Attempts), 10)
	buf = append(buf, `,"started_at":`...)
	buf = strconv.AppendInt(buf, r.Started.UnixMicro(), 10)
	buf = append(buf, `,"finished_at":`...)
	buf = strconv.AppendInt(buf, r.Finished.UnixMicro(), 10)
	if r.Err != "" {
		buf = append(buf, `,"error":`...)
		buf = appendString(buf, r.Err)
	} else {
		buf = append(buf, `,"value":`...)
		if len(r.Value) == 0 {
			buf = append(buf, "null"...)
		} else {
			buf = append(buf, r.Value...)
		}
	}
	return append(buf, '}')
}

// appendString appends s as a JSON string: as it is between quotes when
// nothing in it needs escaping (positional keys, most errors), else as
// encoding/json writes it.
func appendString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			data, err := json.Marshal(s)
			if err != nil { // a string always encodes
				panic(err)
			}
			return append(buf, data...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}

// State is what decides a scatter counted on its batch rows.
type State struct {
	Status        string
	Total, Failed int
	// Open: some batch has items without a result.
	Open bool
	// Layout: where the items are counted and their results stored.
	Layout Layout
}

// State reads the barrier's status and failed count and whether any
// batch is unfinished, in one statement (the open batches' partial index
// answers the last).
func (Store) State(ctx context.Context, db DB, ref Ref) (State, error) {
	var s State
	var open, layout int
	err := db.QueryRow(ctx, `SELECT r.status, r.total, r.failed,
		CASE WHEN EXISTS (SELECT 1 FROM flowstone_scatter_batches b
			WHERE b.run_id = r.run_id AND b.asset = r.asset AND b.partition_key = r.partition_key AND b.finished = 0) THEN 1 ELSE 0 END,
		r.by_batch
		FROM flowstone_scatter_barriers r WHERE r.run_id = ? AND r.asset = ? AND r.partition_key = ?`,
		ref.Run, ref.Asset, ref.Partition).Scan(&s.Status, &s.Total, &s.Failed, &open, &layout)
	s.Open, s.Layout = open == 1, Layout(layout)
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
// flowstone.Outcome: an item without a result is skipped. In the
// BatchRows layout it reads one row per batch, in order, one at a time:
// what it holds besides the two arrays it returns is one batch's results.
func (st Store) Gather(ctx context.Context, db DB, ref Ref, layout Layout, total int) (values, outcomes json.RawMessage, err error) {
	if layout != BatchRows {
		return st.gatherItemRows(ctx, db, ref, total)
	}
	var g gathering
	var recs []batchRecord
	if err := eachBatchRow(ctx, db, ref, false, func(n int, raw []byte) (err error) {
		if recs, err = parseRecords(raw, recs[:0]); err != nil {
			return fmt.Errorf("decode batch %d's results: %w", n, err)
		}
		for _, r := range recs {
			g.add(r)
		}
		return nil
	}); err != nil {
		return nil, nil, err
	}
	return g.end(total)
}

// batchRecord is an ItemRecord as read from its batch row: Key, Value
// and Error are its raw JSON, and alias the row read.
type batchRecord struct {
	Idx      int
	Status   string
	Key      json.RawMessage // a JSON string
	Value    json.RawMessage
	Error    json.RawMessage // a JSON string
	Attempts int
	Started  int64
	Finished int64
}

// eachBatchRow calls fn with the results of each batch of ref that has
// any (only those with failed items when failedOnly), in batch order,
// reading one row at a time; fn must not keep raw.
func eachBatchRow(ctx context.Context, db DB, ref Ref, failedOnly bool, fn func(n int, raw []byte) error) error {
	q := `SELECT batch, results FROM flowstone_scatter_batches
		WHERE run_id = ? AND asset = ? AND partition_key = ? AND done > 0`
	if failedOnly {
		q += ` AND failed > 0`
	}
	rs, err := db.Query(ctx, q+` ORDER BY batch`, ref.Run, ref.Asset, ref.Partition)
	if err != nil {
		return err
	}
	defer rs.Close()
	var raw []byte
	for rs.Next() {
		var n int
		if err := rs.Scan(&n, &raw); err != nil {
			return err
		}
		if raw == nil {
			continue
		}
		if err := fn(n, raw); err != nil {
			return err
		}
	}
	return rs.Err()
}

// gathering builds the two arrays Gather returns, from results in index
// order.
type gathering struct {
	vb, ob strings.Builder
	nv, no int
}

// skip marks the items before index to as skipped.
func (g *gathering) skip(to int) {
	for ; g.no < to; g.no++ {
		g.sep(&g.ob, g.no)
		g.ob.WriteString(`{"value":null,"skipped":true}`)
	}
}

func (g *gathering) sep(b *strings.Builder, n int) {
	if n == 0 {
		b.WriteByte('[')
	} else {
		b.WriteByte(',')
	}
}

func (g *gathering) add(r batchRecord) {
	g.skip(r.Idx)
	g.sep(&g.ob, g.no)
	g.no++
	switch r.Status {
	case ItemSucceeded:
		value := r.Value
		if len(value) == 0 {
			value = json.RawMessage("null")
		}
		g.sep(&g.vb, g.nv)
		g.nv++
		g.vb.Write(value)
		g.ob.WriteString(`{"value":`)
		g.ob.Write(value)
		g.ob.WriteByte('}')
	case ItemFailed:
		g.ob.WriteString(`{"value":null,"error":`)
		g.ob.Write(r.Error)
		g.ob.WriteByte('}')
	default:
		g.ob.WriteString(`{"value":null,"skipped":true}`)
	}
}

func (g *gathering) end(total int) (values, outcomes json.RawMessage, err error) {
	g.skip(total)
	for _, b := range []*strings.Builder{&g.vb, &g.ob} {
		if b.Len() == 0 {
			b.WriteByte('[')
		}
		b.WriteByte(']')
	}
	return json.RawMessage(g.vb.String()), json.RawMessage(g.ob.String()), nil
}

// FirstError returns the first failed item of ref in index order, and
// its error; ok is false when none failed.
func (st Store) FirstError(ctx context.Context, db DB, ref Ref, layout Layout) (idx int, msg string, ok bool, err error) {
	if layout != BatchRows {
		err := db.QueryRow(ctx, `SELECT idx, error FROM flowstone_scatter_items
			WHERE run_id = ? AND asset = ? AND partition_key = ? AND status = ? ORDER BY idx LIMIT 1`,
			ref.Run, ref.Asset, ref.Partition, ItemFailed).Scan(&idx, &msg)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, "", false, nil
		}
		return idx, msg, err == nil, err
	}
	errFound := errors.New("found")
	err = eachBatchRow(ctx, db, ref, true, func(n int, raw []byte) error {
		recs, err := parseRecords(raw, nil)
		if err != nil {
			return fmt.Errorf("decode batch %d's results: %w", n, err)
		}
		for _, r := range recs {
			if r.Status == ItemFailed {
				idx, ok = r.Idx, true
				if msg, err = unquote(r.Error); err != nil {
					return fmt.Errorf("decode item %d's error: %w", r.Idx, err)
				}
				return errFound
			}
		}
		return nil
	})
	if errors.Is(err, errFound) {
		err = nil
	}
	return idx, msg, ok, err
}

// gatherItemRows is Gather for a scatter whose results are item rows.
func (Store) gatherItemRows(ctx context.Context, db DB, ref Ref, total int) (values, outcomes json.RawMessage, err error) {
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

// ItemRecord is one item's stored result, as Records reads it.
type ItemRecord struct {
	Asset, Partition string
	Index            int
	Key              string
	// Status is ItemSucceeded or ItemFailed (or, for an item of a scatter
	// started before migration 003, ItemCancelled).
	Status   string
	Value    json.RawMessage // when succeeded
	Error    string          // when failed
	Attempts int
	// Started and Finished bound the item's run (its attempts included).
	Started, Finished time.Time
}

// storedRecord is an ItemRecord as a BatchRows batch stores it.
type storedRecord struct {
	Idx      int             `json:"idx"`
	Key      string          `json:"key"`
	Status   string          `json:"status"`
	Attempts int             `json:"attempts"`
	Started  int64           `json:"started_at"`
	Finished int64           `json:"finished_at"`
	Value    json.RawMessage `json:"value"`
	Error    string          `json:"error"`
}

// Records calls fn with the record of each item of run's scatters that
// has one, by asset, partition and index, whichever layout stores it:
// what each item did, its retries included.
func Records(ctx context.Context, db DB, run string, fn func(ItemRecord) error) error {
	type scattered struct {
		ref    Ref
		layout Layout
	}
	var all []scattered
	rs, err := db.Query(ctx, `SELECT asset, partition_key, by_batch FROM flowstone_scatter_barriers
		WHERE run_id = ? ORDER BY asset, partition_key`, run)
	if err != nil {
		return err
	}
	for rs.Next() {
		s := scattered{ref: Ref{Run: run}}
		var layout int
		if err := rs.Scan(&s.ref.Asset, &s.ref.Partition, &layout); err != nil {
			rs.Close()
			return err
		}
		s.layout = Layout(layout)
		all = append(all, s)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return err
	}
	for _, s := range all {
		ref := s.ref
		if s.layout == BatchRows {
			var recs []batchRecord
			err = eachBatchRow(ctx, db, ref, false, func(n int, raw []byte) (err error) {
				if recs, err = parseRecords(raw, recs[:0]); err != nil {
					return fmt.Errorf("decode batch %d's results: %w", n, err)
				}
				for _, r := range recs {
					rec := ItemRecord{Asset: ref.Asset, Partition: ref.Partition, Index: r.Idx, Status: r.Status,
						Attempts: r.Attempts, Started: time.UnixMicro(r.Started), Finished: time.UnixMicro(r.Finished)}
					if rec.Key, err = unquote(r.Key); err != nil {
						return fmt.Errorf("decode item %d's key: %w", r.Idx, err)
					}
					if r.Status == ItemFailed {
						if rec.Error, err = unquote(r.Error); err != nil {
							return fmt.Errorf("decode item %d's error: %w", r.Idx, err)
						}
					} else {
						rec.Value = append(json.RawMessage(nil), r.Value...)
					}
					if err := fn(rec); err != nil {
						return err
					}
				}
				return nil
			})
		} else {
			err = itemRowRecords(ctx, db, ref, fn)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// itemRowRecords is Records for a scatter whose results are item rows.
func itemRowRecords(ctx context.Context, db DB, ref Ref, fn func(ItemRecord) error) error {
	rs, err := db.Query(ctx, `SELECT idx, item_key, status, value, error, attempts, started_at, finished_at
		FROM flowstone_scatter_items WHERE run_id = ? AND asset = ? AND partition_key = ? AND status <> ? ORDER BY idx`,
		ref.Run, ref.Asset, ref.Partition, ItemPending)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		r := ItemRecord{Asset: ref.Asset, Partition: ref.Partition}
		var value sql.NullString
		var started, finished sql.NullInt64
		if err := rs.Scan(&r.Index, &r.Key, &r.Status, &value, &r.Error, &r.Attempts, &started, &finished); err != nil {
			return err
		}
		if value.Valid {
			r.Value = json.RawMessage(value.String)
		}
		if started.Valid {
			r.Started = time.UnixMicro(started.Int64)
		}
		if finished.Valid {
			r.Finished = time.UnixMicro(finished.Int64)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rs.Err()
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
