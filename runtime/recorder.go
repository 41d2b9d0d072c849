package runtime

import (
	"context"
	"fmt"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// The results of jobs that finish together are recorded together, the way
// River's own completer completes many jobs in one statement: a job whose
// strategy succeeded (or skipped) prepares everything that does not need
// the transaction (its value encoded or stored by the IO manager, its
// metadata, the upstream materializations it read) and hands the result
// to the engine's recorder. The recorder commits the results gathered
// meanwhile in one transaction that finishes the nodes, inserts their
// materializations, their lineage and their arrivals (store.RecordFinished:
// one statement on PostgreSQL), and advances all their runs (see
// commitGroup). Each job waits for its group before it returns: a job
// that returned before its result committed could be completed by River
// and its result lost with the process.
//
// It is group commit, not a timer: a result that finds the recorder idle
// is committed at once, alone, and those that arrive while a group
// commits form the next group. So a chain of assets, one at a time, waits
// for nothing, and a thousand assets finishing together share a few
// dozen transactions instead of two thousand.
//
// Nothing about exactly-once changes: the group's transaction records
// what a single result's did, for many nodes (each finishes only from
// running or waiting, so a node finished elsewhere records nothing), and
// its readiness checks see every arrival of the groups before it
// (commitGroup says why).
//
// Results with a Commit hook, checks or resume jobs, waiting results and
// failures are recorded one by one as before (record, fail).

// maxGroup bounds a group: larger ones would hold their transaction, and
// the database's locks, for longer than recording them in two groups.
const maxGroup = 256

// finished is a result prepared for the recorder.
type finished struct {
	run    *runCtx
	a      *AssetDef
	part   flowstone.Partition
	fin    store.Finish
	status AssetStatus
	// m is the materialization to record; its times are set when it
	// commits.
	m     store.NewMaterialization
	reads []store.Lineage

	// Set by the group that recorded it.
	recorded bool
	// alone is set when the group's transaction failed: the result is
	// recorded again by itself, so that one bad result fails only itself.
	alone bool
	err   error

	turn
}

// recorder gathers the results that finish while a group commits into
// the next group (groupCommit). Its commit calls handOff once the group's
// transaction has committed.
type recorder = groupCommit[*finished]

// recordFinished records f through the recorder and returns its job's
// outcome.
func (e *Engine) recordFinished(ctx context.Context, f *finished) error {
	e.rec.join(ctx, f)
	if f.alone {
		f.alone = false
		e.commitGroup(ctx, []*finished{f}, func() {})
	}
	return f.err
}

// commitGroup records group's results and advances their runs in one
// transaction (on PostgreSQL a group that is unlikely to advance anything
// is recorded and committed in one round trip, and advanced after the
// commit only if it has to be: see likelyWaiting). Should the process die
// after it commits, River delivers the jobs again, each finds its node
// terminal and advances again.
//
// Advancing in the transaction that records the arrivals is what keeps a
// fan-in exactly once when its upstreams finish in concurrent groups. On
// SQLite write transactions are serial (one sees every transaction
// committed before it and none commits during it, whichever process runs
// it), so of the upstreams of a fan-in the last to record sees every
// arrival in its own transaction. On PostgreSQL, under READ COMMITTED,
// two groups could each miss the other's uncommitted arrival; advancing
// locks each dependent's row before its check (store.Dependents) and
// holds it until commit, so the group that locks a fan-in last counts the
// arrivals of every group before it, committed by then, and the claim in
// resolve lets only one start it.
//
// A run's end has no row to lock: two groups that finish a run's last
// assets at once each see the other's still running. On PostgreSQL a run
// whose end a group found unfinished is checked again once the group has
// committed (endRuns): of the groups, the last to commit sees them all.
func (e *Engine) commitGroup(ctx context.Context, group []*finished, handOff func()) {
	var advanced []Event
	var unfinished []*runCtx
	// speculate: record and commit in one round trip, then advance after
	// the commit only if a dependent may be ready (see recordCommitted).
	speculate := e.dialect == "postgres" && likelyWaiting(group)
	var later bool
	err := e.be.inTx(ctx, func(tx txn) error {
		unfinished = unfinished[:0]
		advanced = nil
		if speculate {
			var ok bool
			var err error
			if ok, later, err = e.recordCommitted(ctx, tx, group); ok || err != nil {
				return err
			}
		}
		later = false
		deps, err := e.recordGroup(ctx, tx, group)
		if err != nil {
			return err
		}
		for runs, first := groupRuns(group), true; first || len(runs) > 0; first = false {
			if !first {
				if deps, err = e.dependentsOf(ctx, tx, runs); err != nil {
					return err
				}
			}
			fxs, err := e.advanceWith(ctx, tx, runs, deps)
			if err != nil {
				return err
			}
			for i := range fxs {
				advanced = append(advanced, fxs[i].events...)
				if fxs[i].unfinished {
					unfinished = append(unfinished, runs[i].run)
				}
			}
			runs = nextRound(runs, fxs)
		}
		return nil
	})
	handOff()
	if err != nil {
		if len(group) == 1 {
			group[0].err = fmt.Errorf("record %s: %w", group[0].a.Key, err)
			return
		}
		for _, f := range group {
			f.alone = true
		}
		return
	}
	var events []Event
	for _, f := range group {
		if f.recorded {
			events = append(events, finishedEvent(f.run, f.a, f.part, f.status, f.fin.Reason))
		}
	}
	e.events.publish(events...)
	e.events.publish(advanced...)
	if later {
		if err := e.advanceRuns(ctx, groupRuns(group)); err != nil {
			for _, f := range group {
				if f.err == nil && !f.alone {
					f.err = err
				}
			}
		}
	}
	if e.dialect != "sqlite" {
		if err := e.endRuns(ctx, unfinished); err != nil {
			for _, f := range group {
				if f.err == nil && !f.alone {
					f.err = err
				}
			}
		}
	}
}

// endRuns finishes those of runs that have nothing left to do, each in a
// transaction of its own (checkRunDone), after the transactions that
// finished their assets committed.
func (e *Engine) endRuns(ctx context.Context, runs []*runCtx) error {
	seen := make(map[string]bool, len(runs))
	for _, run := range runs {
		if seen[run.id] {
			continue
		}
		seen[run.id] = true
		open, err := e.st.RunOpen(ctx, e.be.pool(), run.id)
		if err != nil {
			return err
		}
		if open {
			continue
		}
		var fx effects
		if err := e.be.inTx(ctx, func(tx txn) error {
			fx = effects{}
			if err := e.checkRunDone(ctx, tx, run, &fx); err != nil {
				return err
			}
			return tx.insertJobs(ctx, fx.jobs)
		}); err != nil {
			return err
		}
		e.events.publish(fx.events...)
	}
	return nil
}

// groupRuns returns the runs of group's results to advance, with the
// nodes recorded (merged by run). A node that was not recorded was
// finished by another process or cancelled with its run: its run is still
// checked for being done, as record does.
func groupRuns(group []*finished) []runNodes {
	runs := make([]runNodes, 0, len(group))
	for _, f := range group {
		if f.alone {
			continue
		}
		r := runNodes{run: f.run}
		if f.recorded {
			r.nodes = []node{{f.a, f.part}}
		}
		runs = append(runs, r)
	}
	return mergeRuns(runs)
}

// recordGroup finishes group's nodes, and records the materializations,
// lineage and arrivals of those it finished, in tx, and returns their
// dependents (locked on PostgreSQL, see commitGroup). A node twice in the
// group is left for its job to record alone.
func (e *Engine) recordGroup(ctx context.Context, tx txn, group []*finished) ([]store.Dependent, error) {
	rec, err := e.st.RecordFinished(ctx, tx, e.dialect == "postgres", groupFinished(group))
	if err != nil {
		return nil, err
	}
	markRecorded(group, rec)
	return rec.Dependents, nil
}

// groupFinished returns what to record of group's results. A node twice
// in the group is left for its job to record alone.
func groupFinished(group []*finished) []store.Finished {
	fins := make([]store.Finished, 0, len(group))
	seen := make(map[store.Node]bool, len(group))
	for _, f := range group {
		f.recorded = false
		if seen[f.fin.Node] {
			f.alone = true
			continue
		}
		seen[f.fin.Node] = true
		fins = append(fins, store.Finished{Finish: f.fin, Block: blockOf(f.status), M: f.m, Reads: f.reads})
	}
	return fins
}

// markRecorded marks the results of group that rec recorded.
func markRecorded(group []*finished, rec store.Recorded) {
	for _, f := range group {
		if _, ok := rec.Started[f.fin.Node]; ok && !f.alone {
			f.recorded = true
		}
	}
}

// A group whose results' dependents all wait for more than the group
// brings them (a fan-in over many assets, most of whose upstreams are yet
// to finish) has nothing to advance, almost always: its transaction only
// records. On PostgreSQL such a group is recorded and committed in one
// round trip (store.RecordFinishedCommit, where recordGroup, the
// readiness check and the commit take three), the readiness of its
// dependents read in between, after the record locked them, as the
// advance in the transaction would read it. When that shows a dependent
// that may be ready (or a run with no dependent left waiting, whose end
// is then to check), the group's runs are advanced after the commit, in
// transactions of their own (advanceRuns), as a job advances its run
// when it finds its node already terminal: of the groups that record a
// fan-in's arrivals, the one that locks it last reads every arrival, and
// advances it after its commit, and the claim in resolve lets only one
// start it. Should the process die between the commit and that advance,
// the jobs are delivered again (they had not returned), find their nodes
// terminal and advance. A group that would have something to advance
// (a chain's next asset) is recorded and advanced in one transaction as
// before, not in two.

// likelyWaiting reports whether every dependent of group's assets has
// more than twice as many dependencies as the group has results, so that
// the group is unlikely to make any of them ready; an asset without
// dependents ends its run, which is not likely.
func likelyWaiting(group []*finished) bool {
	for _, f := range group {
		downs := f.run.p.downstream[f.a.Key]
		if len(downs) == 0 {
			return false
		}
		for _, d := range downs {
			if def := f.run.p.Asset(d); def == nil || len(def.Deps) <= 2*len(group) {
				return false
			}
		}
	}
	return true
}

// recordCommitted records group and commits tx in one round trip
// (txn.recordCommit); ok is false, with nothing done, where tx cannot.
// later is set when the group's runs are to be advanced after the
// commit: a result not recorded, a dependent of the recorded ones that
// may be ready, or a run none of whose dependents is left waiting.
func (e *Engine) recordCommitted(ctx context.Context, tx txn, group []*finished) (ok, later bool, err error) {
	rec, deps, ok, err := tx.recordCommit(ctx, groupFinished(group))
	if !ok || err != nil {
		return ok, false, err
	}
	markRecorded(group, rec)
	waiting := make(map[string]bool, 1)
	for _, d := range deps {
		switch {
		case d.Waits():
			waiting[d.Run] = true
		case d.Status == store.AssetPending:
			later = true
		}
	}
	for _, f := range group {
		if !f.alone && (!f.recorded || !waiting[f.run.id]) {
			later = true
		}
	}
	return true, later, nil
}
