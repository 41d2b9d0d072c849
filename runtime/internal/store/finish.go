package store

import (
	"context"
	"fmt"
	"strings"
)

// The statements below record many finished nodes at once: the engine's
// recorder commits the results of the jobs that finish together in one
// transaction (RecordFinished). On SQLite each names its rows with a
// common table expression of VALUES, in front of an UPDATE ... FROM or an
// INSERT ... SELECT; the expression's columns have names of their own, so
// that RETURNING and SET never meet an ambiguous one. On PostgreSQL the
// rows travel as arrays (unnest), so each statement has one text. On
// SQLite the rows of the updates, of the arrivals' insert and of
// Dependents are padded to a power of two with copies of the last
// (padRows), which change nothing (a row matched twice is updated once; an
// arrival inserted twice is inserted once; Dependents' rows are distinct),
// and the multi-row inserts are split into statements of a power of two
// rows (insertRows), so that each statement has a few texts,
// each prepared once by the statement cache, rather than one per group
// size (up to some four hundred at Concurrency 100, near the cache's
// capacity: preparing them was a tenth of the process's time).

// padRows returns the count of rows a statement for n rows names: n
// rounded up to a power of two.
func padRows(n int) int { return ceilPow2(n) }

// groupChunk bounds the rows named in one statement (PostgreSQL takes
// 65,535 bound parameters, SQLite 32,766).
const groupChunk = 500

// valuesCTE returns "WITH v(cols) AS (VALUES (?, ...), ...) " for n rows.
func valuesCTE(cols string, n int) string {
	tuple := "(" + placeholders(strings.Count(cols, ",")+1) + ")"
	var b strings.Builder
	b.WriteString("WITH v(")
	b.WriteString(cols)
	b.WriteString(") AS (VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
	}
	b.WriteString(") ")
	return b.String()
}

// Finish is a node's outcome to record: FinishAttempt's arguments.
type Finish struct {
	Node
	Status          AssetStatus
	Materialization string
	Reason          string
}

// FinishAttempts is FinishAttempt for many nodes: it records each running
// or waiting node's outcome and materialization, and returns when each of
// those it changed started. A node missing from the result was in neither
// status (cancelled, or finished by another process). The nodes must be
// distinct.
func (Store) FinishAttempts(ctx context.Context, q Querier, fins []Finish) (started map[Node]int64, err error) {
	started = make(map[Node]int64, len(fins))
	at := now()
	for start := 0; start < len(fins); start += groupChunk {
		chunk := fins[start:min(start+groupChunk, len(fins))]
		rows := padRows(len(chunk))
		args := make([]any, 0, 6*rows+3)
		for i := range rows {
			f := chunk[min(i, len(chunk)-1)]
			args = append(args, f.Run, f.Asset, f.Partition, f.Status, f.Materialization, f.Reason)
		}
		args = append(args, at, AssetRunning, AssetWaiting)
		rs, err := q.Query(ctx, valuesCTE("vr, va, vp, vs, vm, ve", rows)+
			`UPDATE flowstone_run_assets SET status = v.vs, materialization_id = v.vm, error = v.ve, finished_at = ?
			FROM v WHERE run_id = v.vr AND asset = v.va AND partition_key = v.vp AND status IN (?, ?)
			RETURNING run_id, asset, partition_key, COALESCE(started_at, 0)`, args...)
		if err != nil {
			return nil, fmt.Errorf("finish attempts: %w", err)
		}
		for rs.Next() {
			var n Node
			var s int64
			if err := rs.Scan(&n.Run, &n.Asset, &n.Partition, &s); err != nil {
				rs.Close()
				return nil, err
			}
			started[n] = s
		}
		rs.Close()
		if err := rs.Err(); err != nil {
			return nil, fmt.Errorf("finish attempts: %w", err)
		}
	}
	return started, nil
}

// InsertMaterializations records ms in multi-row statements.
func (Store) InsertMaterializations(ctx context.Context, q Querier, ms []NewMaterialization) error {
	err := insertRows(ctx, q, `INSERT INTO flowstone_materializations
		(id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, value, external, views, metadata, attempts, error, started_at, finished_at)
		VALUES `, 17, len(ms), func(i int) []any {
		return materializationRow(ms[i])
	})
	if err != nil {
		return fmt.Errorf("record materializations: %w", err)
	}
	return nil
}

// materializationRow is m's values in InsertMaterialization's column order.
func materializationRow(m NewMaterialization) []any {
	var value, views any
	if m.Value != nil {
		value = string(m.Value)
	}
	if m.Views != nil {
		views = string(m.Views)
	}
	if m.Metadata == "" {
		m.Metadata = "{}"
	}
	return []any{m.ID, m.Pipeline, m.Asset, m.Partition, m.Run, m.Status, m.CodeVersion, m.ConfigHash, m.InputHash,
		value, boolInt(m.External), views, m.Metadata, m.Attempts, m.Error, m.StartedAt, m.FinishedAt}
}

// Read is one upstream materialization that a materialization read.
type Read struct {
	Materialization string
	Lineage
}

// InsertReads records the lineage of many materializations in multi-row
// statements.
func (Store) InsertReads(ctx context.Context, q Querier, reads []Read) error {
	err := insertRows(ctx, q, `INSERT INTO flowstone_lineage (materialization_id, upstream_asset, upstream_partition, upstream_materialization_id) VALUES `,
		4, len(reads), func(i int) []any {
			r := reads[i]
			return []any{r.Materialization, r.Asset, r.Partition, r.Lineage.Materialization}
		})
	if err != nil {
		return fmt.Errorf("record lineage: %w", err)
	}
	return nil
}

// Arrival is an upstream node that became terminal, and what that does
// to the dependents that require it.
type Arrival struct {
	Upstream Node
	Block    Block
}

// InsertArrivalsOf is InsertArrivals for many upstreams: it records, for
// each dependent of each, that it arrived.
func (Store) InsertArrivalsOf(ctx context.Context, q Querier, arrivals []Arrival) error {
	for start := 0; start < len(arrivals); start += groupChunk {
		chunk := arrivals[start:min(start+groupChunk, len(arrivals))]
		rows := padRows(len(chunk))
		args := make([]any, 0, 4*rows)
		for i := range rows {
			a := chunk[min(i, len(chunk)-1)]
			args = append(args, a.Upstream.Run, a.Upstream.Asset, a.Upstream.Partition, a.Block)
		}
		if _, err := q.Exec(ctx, valuesCTE("vr, va, vp, vb", rows)+
			`INSERT INTO flowstone_arrivals (run_id, asset, partition_key, upstream, upstream_partition, required, block)
			SELECT e.run_id, e.asset, e.partition_key, e.upstream, e.upstream_partition, e.required, CASE WHEN e.required = 1 THEN v.vb ELSE '' END
			FROM v, flowstone_run_edges e WHERE e.run_id = v.vr AND e.upstream = v.va AND e.upstream_partition = v.vp
			ON CONFLICT DO NOTHING`, args...); err != nil {
			return fmt.Errorf("record arrivals: %w", err)
		}
	}
	return nil
}

// Dependent is a node of a run that depends on Upstream.
type Dependent struct {
	Upstream Node
	Node
}

// Dependents returns the dependents of each of ups in their runs, ordered
// by run, dependent (asset and partition), then upstream.
//
// On PostgreSQL (postgres) it also locks the dependents' rows until the
// transaction ends, in that order, so that the readiness checks of a
// dependent are serial: a transaction that inserted arrivals and checks
// the dependent in the same transaction holds the lock from before its
// check until it commits, so whichever transaction takes the lock last
// counts every arrival of the others (it reads them in statements that
// start after it got the lock). Its upstreams travel as arrays, so the
// statement has one text whatever their number.
func (Store) Dependents(ctx context.Context, q Querier, postgres bool, ups []Node) ([]Dependent, error) {
	if len(ups) == 0 {
		return nil, nil
	}
	if postgres {
		runs, assets, parts := make([]string, len(ups)), make([]string, len(ups)), make([]string, len(ups))
		for i, n := range ups {
			runs[i], assets[i], parts[i] = n.Run, n.Asset, n.Partition
		}
		rs, err := q.Query(ctx, `SELECT e.run_id, e.upstream, e.upstream_partition, e.asset, e.partition_key
			FROM unnest(?::text[], ?::text[], ?::text[]) AS v(vr, va, vp)
			JOIN flowstone_run_edges e ON e.run_id = v.vr AND e.upstream = v.va AND e.upstream_partition = v.vp
			JOIN flowstone_run_assets ra ON ra.run_id = e.run_id AND ra.asset = e.asset AND ra.partition_key = e.partition_key
			ORDER BY e.run_id, e.asset, e.partition_key, e.upstream, e.upstream_partition
			FOR UPDATE OF ra`, runs, assets, parts)
		return scanDependents(nil, rs, err)
	}
	var out []Dependent
	for start := 0; start < len(ups); start += groupChunk {
		chunk := ups[start:min(start+groupChunk, len(ups))]
		rows := padRows(len(chunk))
		args := make([]any, 0, 3*rows)
		for i := range rows {
			n := chunk[min(i, len(chunk)-1)]
			args = append(args, n.Run, n.Asset, n.Partition)
		}
		// DISTINCT: the padding names the last upstream more than once.
		rs, err := q.Query(ctx, valuesCTE("vr, va, vp", rows)+`SELECT DISTINCT e.run_id, e.upstream, e.upstream_partition, e.asset, e.partition_key
			FROM v, flowstone_run_edges e WHERE e.run_id = v.vr AND e.upstream = v.va AND e.upstream_partition = v.vp
			ORDER BY e.run_id, e.asset, e.partition_key, e.upstream, e.upstream_partition`, args...)
		if out, err = scanDependents(out, rs, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LockNode locks n's row until the transaction ends, as Dependents locks
// the dependents it returns (PostgreSQL only): for a readiness check that
// does not go through Dependents.
func (Store) LockNode(ctx context.Context, q Querier, n Node) error {
	_, err := q.Exec(ctx, `SELECT 1 FROM flowstone_run_assets WHERE run_id = ? AND asset = ? AND partition_key = ? FOR UPDATE`,
		n.Run, n.Asset, n.Partition)
	return err
}

// scanDependents appends the dependents of Dependents' query to out.
func scanDependents(out []Dependent, rs Rows, err error) ([]Dependent, error) {
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	for rs.Next() {
		var d Dependent
		if err := rs.Scan(&d.Run, &d.Upstream.Asset, &d.Upstream.Partition, &d.Asset, &d.Partition); err != nil {
			return nil, err
		}
		d.Upstream.Run = d.Run
		out = append(out, d)
	}
	return out, rs.Err()
}

// Finished is a finished node to record: its outcome, what its arrival
// does to its dependents, its materialization (whose times are set when it
// is recorded) and the upstream materializations it read.
type Finished struct {
	Finish
	Block Block
	M     NewMaterialization
	Reads []Lineage
}

// RecordFinished records many finished nodes at once: it finishes each
// that is running or waiting (FinishAttempts) and records the
// materializations, lineage and arrivals of those it finished, and returns
// when each of those started and their dependents (as Dependents does,
// locked on PostgreSQL). The nodes must be distinct. On PostgreSQL it is
// one statement whose text does not depend on how many nodes it records:
// the rows travel as arrays, so the statement is prepared once per
// connection and the whole record is one round trip.
func (s Store) RecordFinished(ctx context.Context, q Querier, postgres bool, fins []Finished) (Recorded, error) {
	if len(fins) == 0 {
		return Recorded{Started: map[Node]int64{}}, nil
	}
	if postgres {
		return recordFinishedPg(ctx, q, fins)
	}
	fs := make([]Finish, len(fins))
	for i, f := range fins {
		fs[i] = f.Finish
	}
	started, err := s.FinishAttempts(ctx, q, fs)
	if err != nil {
		return Recorded{}, err
	}
	at := now()
	ms := make([]NewMaterialization, 0, len(started))
	arrivals := make([]Arrival, 0, len(started))
	var reads []Read
	for _, f := range fins {
		st, ok := started[f.Node]
		if !ok {
			continue
		}
		m := f.M
		m.StartedAt, m.FinishedAt = st, at
		ms = append(ms, m)
		for _, l := range f.Reads {
			reads = append(reads, Read{Materialization: m.ID, Lineage: l})
		}
		arrivals = append(arrivals, Arrival{Upstream: f.Node, Block: f.Block})
	}
	if err := s.InsertMaterializations(ctx, q, ms); err != nil {
		return Recorded{}, err
	}
	if err := s.InsertReads(ctx, q, reads); err != nil {
		return Recorded{}, err
	}
	if err := s.InsertArrivalsOf(ctx, q, arrivals); err != nil {
		return Recorded{}, err
	}
	ups := make([]Node, len(arrivals))
	for i, a := range arrivals {
		ups[i] = a.Upstream
	}
	deps, err := s.Dependents(ctx, q, false, ups)
	if err != nil {
		return Recorded{}, err
	}
	return Recorded{Started: started, Dependents: deps}, nil
}

// Recorded is what RecordFinished recorded.
type Recorded struct {
	// Started holds when each node it finished started.
	Started map[Node]int64
	// Dependents are the dependents of the nodes it finished, as
	// Dependents returns them (locked on PostgreSQL).
	Dependents []Dependent
}

// recordFinishedPg is RecordFinished's one statement on PostgreSQL: the
// update's RETURNING names the nodes it finished, and only their rows are
// inserted. The sub-statements of a WITH share one snapshot, so none reads
// another's rows; none needs to. d locks the dependents as Dependents
// does; one that this statement itself finished is left out (a statement
// cannot lock a row it updated), and needs no check: it is not pending.
func recordFinishedPg(ctx context.Context, q Querier, fins []Finished) (Recorded, error) {
	query, args := recordFinishedPgQuery(fins)
	rs, err := q.Query(ctx, query, args...)
	return scanRecorded(rs, err, len(fins))
}

// recordFinishedPgQuery returns recordFinishedPg's statement (with $n
// placeholders) and its arguments.
func recordFinishedPgQuery(fins []Finished) (string, []any) {
	n := len(fins)
	cols := make([][]string, 18)
	for i := range cols {
		cols[i] = make([]string, n)
	}
	value, views := make([]*string, n), make([]*string, n)
	external, attempts := make([]int, n), make([]int, n)
	var rm, ra, rp, ru []string
	for i, f := range fins {
		m := f.M
		if m.Metadata == "" {
			m.Metadata = "{}"
		}
		for c, v := range []string{f.Run, f.Asset, f.Partition, string(f.Status), f.Materialization, f.Reason, string(f.Block),
			m.ID, m.Pipeline, m.Asset, m.Partition, m.Run, string(m.Status), m.CodeVersion, m.ConfigHash, m.InputHash, m.Metadata, m.Error} {
			cols[c][i] = v
		}
		if m.Value != nil {
			s := string(m.Value)
			value[i] = &s
		}
		if m.Views != nil {
			s := string(m.Views)
			views[i] = &s
		}
		external[i], attempts[i] = boolInt(m.External), m.Attempts
		for _, l := range f.Reads {
			rm, ra, rp, ru = append(rm, m.ID), append(ra, l.Asset), append(rp, l.Partition), append(ru, l.Materialization)
		}
	}
	args := make([]any, 0, 30)
	for _, c := range cols {
		args = append(args, c)
	}
	args = append(args, value, views, external, attempts, now(), AssetRunning, AssetWaiting, rm, ra, rp, ru)
	return rebind(`WITH u AS (
			SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
				?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
				?::text[], ?::text[], ?::int[], ?::int[])
			AS u(vr, va, vp, vs, vm, ve, vb, id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, metadata, error,
				value, views, external, attempts)
		), t AS (SELECT ?::bigint AS at),
		f AS (
			UPDATE flowstone_run_assets ra SET status = u.vs, materialization_id = u.vm, error = u.ve, finished_at = t.at
			FROM u, t WHERE ra.run_id = u.vr AND ra.asset = u.va AND ra.partition_key = u.vp AND ra.status IN (?, ?)
			RETURNING u.*, COALESCE(ra.started_at, 0) AS started, t.at
		), m AS (
			INSERT INTO flowstone_materializations
				(id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, value, external, views, metadata, attempts, error, started_at, finished_at)
			SELECT id, pipeline, asset, partition_key, run_id, status, code_version, config_hash, input_hash, value, external, views, metadata, attempts, error, started, at
			FROM f
		), l AS (
			INSERT INTO flowstone_lineage (materialization_id, upstream_asset, upstream_partition, upstream_materialization_id)
			SELECT r.m, r.a, r.p, r.u FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) AS r(m, a, p, u) JOIN f ON f.id = r.m
		), a AS (
			INSERT INTO flowstone_arrivals (run_id, asset, partition_key, upstream, upstream_partition, required, block)
			SELECT e.run_id, e.asset, e.partition_key, e.upstream, e.upstream_partition, e.required, CASE WHEN e.required = 1 THEN f.vb ELSE '' END
			FROM f JOIN flowstone_run_edges e ON e.run_id = f.vr AND e.upstream = f.va AND e.upstream_partition = f.vp
			ON CONFLICT DO NOTHING
		), d AS (
			SELECT e.run_id, e.upstream, e.upstream_partition, e.asset, e.partition_key
			FROM f JOIN flowstone_run_edges e ON e.run_id = f.vr AND e.upstream = f.va AND e.upstream_partition = f.vp
			JOIN flowstone_run_assets ra ON ra.run_id = e.run_id AND ra.asset = e.asset AND ra.partition_key = e.partition_key
			ORDER BY e.run_id, e.asset, e.partition_key, e.upstream, e.upstream_partition
			FOR UPDATE OF ra
		)
		(SELECT vr, va, vp, started, NULL, NULL FROM f)
		UNION ALL
		(SELECT run_id, upstream, upstream_partition, NULL, asset, partition_key FROM d
			ORDER BY run_id, asset, partition_key, upstream, upstream_partition)`), args
}

// scanRecorded reads the rows of recordFinishedPg's statement, which
// recorded n nodes.
func scanRecorded(rs Rows, err error, n int) (Recorded, error) {
	if err != nil {
		return Recorded{}, fmt.Errorf("record finished: %w", err)
	}
	defer rs.Close()
	rec := Recorded{Started: make(map[Node]int64, n)}
	for rs.Next() {
		var up Node
		var started *int64
		var asset, part *string
		if err := rs.Scan(&up.Run, &up.Asset, &up.Partition, &started, &asset, &part); err != nil {
			return Recorded{}, fmt.Errorf("record finished: %w", err)
		}
		if started != nil {
			rec.Started[up] = *started
			continue
		}
		rec.Dependents = append(rec.Dependents, Dependent{Upstream: up, Node: Node{Run: up.Run, Asset: *asset, Partition: *part}})
	}
	if err := rs.Err(); err != nil {
		return Recorded{}, fmt.Errorf("record finished: %w", err)
	}
	return rec, nil
}
