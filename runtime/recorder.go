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
// transaction. Should the process die after it commits, River delivers
// the jobs again, each finds its node terminal and advances again.
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
	err := e.be.inTx(ctx, func(tx txn) error {
		unfinished = unfinished[:0]
		deps, err := e.recordGroup(ctx, tx, group)
		if err != nil {
			return err
		}
		advanced = nil
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
	rec, err := e.st.RecordFinished(ctx, tx, e.dialect == "postgres", fins)
	if err != nil {
		return nil, err
	}
	for _, f := range group {
		if _, ok := rec.Started[f.fin.Node]; ok && !f.alone {
			f.recorded = true
		}
	}
	return rec.Dependents, nil
}
