package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/rivertype"
)

// Every process that works jobs beats in flowstone_processes every few
// seconds. Its running jobs belong to it for as long as it beats: once its
// row is older than Config.TakeoverAfter, any other working process puts
// them back in the queue (guarded by River's own rescue statement, which
// touches only jobs still running since before the look). timeout= and
// Config.DefaultTimeout bound an attempt of a live process; River's
// rescuer, past the longest of them, remains the last resort.

// defaultTakeoverAfter is how long a silent process keeps its jobs.
const defaultTakeoverAfter = 30 * time.Second

// maxCrashes is how many attempts of a node may end with their process
// dying before the node is failed instead of tried again: the first such
// death, however it happened, and each one while the node ran alone in
// its process (solo.go).
const maxCrashes = 3

// crashedError is why a node whose attempts crashed their worker crashes
// times fails.
func crashedError(crashes int) error {
	return fmt.Errorf("crashed its worker %d times (the last %d running alone in its process)", crashes, crashes-1)
}

// takeoverReason begins the error a job taken over from a process that
// stopped beating records for its attempt.
const takeoverReason = "its worker process stopped"

// riverRescueReason is the error River's own rescuer records for the
// attempt of a job it rescues.
const riverRescueReason = "Stuck job rescued by JobRescuer"

// lastAttemptDied reports whether job's previous attempt ended with its
// process dying (it was taken over or rescued), rather than returning.
func lastAttemptDied(job *rivertype.JobRow) bool {
	if len(job.Errors) == 0 {
		return false
	}
	last := job.Errors[len(job.Errors)-1].Error
	return strings.HasPrefix(last, takeoverReason) || last == riverRescueReason
}

// liveness is the heartbeat loop of a working engine.
type liveness struct {
	stop context.CancelFunc
	done chan struct{}
}

// startLiveness starts beating for this process and taking over the jobs
// of processes that stopped.
func (e *Engine) startLiveness() {
	after := e.cfg.TakeoverAfter
	if after <= 0 {
		after = defaultTakeoverAfter
	}
	every := max(after/6, 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	l := &liveness{stop: cancel, done: make(chan struct{})}
	e.live = l
	go func() {
		defer close(l.done)
		id := e.be.clientID()
		t := time.NewTicker(every)
		defer t.Stop()
		failing := false
		for {
			err := e.beat(ctx)
			if err == nil {
				e.out.up()
				// After an outage every process beats again within
				// a few seconds: until after has passed, a silent one
				// may be one still reconnecting, not a dead one.
				if e.out.settled(after) {
					err = e.takeOverDead(ctx, id, after)
					if began, ok := e.out.ended(); ok && err == nil {
						err = e.takeBackOrphans(ctx, id, began)
					}
				}
			}
			if IsUnreachable(err) && ctx.Err() == nil {
				e.out.down(err) // said once for the whole engine
				err = nil
			}
			switch {
			case ctx.Err() != nil:
			case err != nil && !failing:
				e.log.WarnContext(ctx, "heartbeat failed; retrying", "error", err)
				failing = true
			case err == nil && failing:
				e.log.InfoContext(ctx, "heartbeat recovered")
				failing = false
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stopLiveness stops beating and removes this process's row, so nobody
// waits for it.
// beat records this process's heartbeat.
func (e *Engine) beat(ctx context.Context) error {
	host, _ := os.Hostname()
	return e.st.Heartbeat(ctx, e.be.pool(), e.be.clientID(), host, os.Getpid())
}

func (e *Engine) stopLiveness(ctx context.Context) {
	if e.live == nil {
		return
	}
	e.live.stop()
	<-e.live.done
	_ = e.st.ForgetProcess(ctx, e.be.pool(), e.be.clientID())
}

// takeOverDead puts the running jobs of processes silent for longer than
// after back in the queue, and fails the nodes of those out of attempts.
func (e *Engine) takeOverDead(ctx context.Context, self string, after time.Duration) error {
	horizon := time.Now()
	stale, err := e.st.StaleProcesses(ctx, e.be.pool(), horizon.Add(-after))
	if err != nil || len(stale) == 0 {
		return err
	}
	dead := stale[:0]
	for _, id := range stale {
		if id != self {
			dead = append(dead, id)
		}
	}
	if len(dead) == 0 {
		return nil
	}
	isDead := make(map[string]bool, len(dead))
	for _, id := range dead {
		isDead[id] = true
	}
	reason := fmt.Sprintf("%s for more than %s", takeoverReason, after)
	discarded, n, err := e.be.takeOver(ctx, func(j *rivertype.JobRow) bool { return isDead[lastAttemptBy(j)] }, horizon, reason)
	if err != nil {
		return fmt.Errorf("take over jobs: %w", err)
	}
	if n > 0 {
		e.log.WarnContext(ctx, "took over the jobs of worker processes that stopped", "processes", dead, "jobs", n)
	}
	errs := e.discarded(ctx, discarded, reason)
	for _, id := range dead {
		errs = append(errs, e.st.ForgetProcess(ctx, e.be.pool(), id))
	}
	return errors.Join(errs...)
}

// discarded records the ends of the nodes of jobs given up for good when
// taken over (jobDiscarded).
func (e *Engine) discarded(ctx context.Context, jobs []*rivertype.JobRow, reason string) []error {
	var errs []error
	for _, job := range jobs {
		errs = append(errs, e.jobDiscarded(ctx, job, reason))
	}
	return errs
}

// lastAttemptBy is the ID of the process that took job's last attempt.
func lastAttemptBy(job *rivertype.JobRow) string {
	if len(job.AttemptedBy) == 0 {
		return ""
	}
	return job.AttemptedBy[len(job.AttemptedBy)-1]
}

func (b *riverBackend[D, T]) clientID() string { return b.client.ID() }

func (b *riverBackend[D, T]) takeOver(ctx context.Context, taken func(*rivertype.JobRow) bool, horizon time.Time, reason string) ([]*rivertype.JobRow, int, error) {
	const page = 1000
	now := time.Now().UTC()
	rescue := &riverdriver.JobRescueManyParams{Schema: b.schema, StuckHorizon: horizon.UTC()}
	var discarded []*rivertype.JobRow
	params := river.NewJobListParams().States(rivertype.JobStateRunning).First(page)
	for {
		res, err := b.client.JobList(ctx, params)
		if err != nil {
			return nil, 0, err
		}
		for _, j := range res.Jobs {
			if len(j.AttemptedBy) == 0 || !taken(j) {
				continue
			}
			data, err := json.Marshal(rivertype.AttemptError{At: now, Attempt: j.Attempt, Error: reason})
			if err != nil {
				return nil, 0, err
			}
			state, finalized := rivertype.JobStateAvailable, (*time.Time)(nil)
			if j.Attempt >= j.MaxAttempts {
				state, finalized = rivertype.JobStateDiscarded, &now
				discarded = append(discarded, j)
			}
			rescue.ID = append(rescue.ID, j.ID)
			rescue.Error = append(rescue.Error, data)
			rescue.FinalizedAt = append(rescue.FinalizedAt, finalized)
			rescue.ScheduledAt = append(rescue.ScheduledAt, now)
			rescue.State = append(rescue.State, string(state))
		}
		if len(res.Jobs) < page {
			break
		}
		params = params.After(res.LastCursor)
	}
	if len(rescue.ID) == 0 {
		return nil, 0, nil
	}
	if _, err := b.driver.GetExecutor().JobRescueMany(ctx, rescue); err != nil {
		return nil, 0, err
	}
	return discarded, len(rescue.ID), nil
}

// jobDiscarded records the end of a node whose job the queue gave up on
// for good, so its run ends: the node fails with why, its dependents are
// upstream_failed and the run advances. Jobs of other kinds end nothing.
func (e *Engine) jobDiscarded(ctx context.Context, job *rivertype.JobRow, reason string) error {
	var args nodeJob
	if err := json.Unmarshal(job.EncodedArgs, &args); err != nil || args.Run == "" || args.Asset == "" {
		return nil
	}
	b, ok := e.bindings[args.Pipeline]
	if !ok {
		return nil
	}
	a := b.pipeline.Asset(args.Asset)
	if a == nil {
		return nil
	}
	run, st, err := e.loadRun(ctx, b.pipeline, args)
	if err != nil {
		if errors.Is(err, ErrRunNotFound) || errors.Is(err, ErrNotInRun) {
			return nil // the run is gone, or loadRun ended it
		}
		return err
	}
	msg := fmt.Sprintf("asset %s: its job was given up after %d attempts: %s", a.Key, job.Attempt, reason)
	var fx effects
	err = e.be.inTx(ctx, func(tx txn) error {
		fx = effects{}
		return e.recordFailure(ctx, tx, run, a, args, st.Attempts, msg, &fx)
	})
	if err != nil {
		return err
	}
	e.log.ErrorContext(ctx, "asset failed", "run", args.Run, "asset", a.Key, "partition", args.Partition, "error", msg)
	e.events.publish(fx.events...)
	return e.advance(ctx, run, fx.terminal)
}
