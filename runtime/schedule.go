package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/cronexpr"
	"github.com/riverqueue/river"
	"github.com/robfig/cron/v3"
)

// cronSchedule is a cron schedule evaluated in a time zone, as River's
// periodic job scheduler wants it.
type cronSchedule struct {
	s   cron.Schedule
	loc *time.Location
}

func (c cronSchedule) Next(t time.Time) time.Time { return c.s.Next(t.In(c.loc)) }

// scheduleLocation is the zone an asset's schedule ticks in: its time
// partition set's, else UTC.
func scheduleLocation(a *AssetDef) *time.Location {
	if ts, ok := a.Partitions.(flowstone.TimeWindowSet); ok && ts.Location() != nil {
		return ts.Location()
	}
	return time.UTC
}

// periodicJobs returns River periodic jobs for the scheduled assets of the
// bound pipelines. River's leader alone inserts them, one per tick; the run
// key derived from the tick makes a tick start at most one run even when
// leadership changes hands mid-tick.
func (e *Engine) periodicJobs() ([]*river.PeriodicJob, error) {
	var jobs []*river.PeriodicJob
	var errs []error
	for _, p := range e.Pipelines() {
		for _, a := range p.assets {
			if a.Schedule == "" {
				continue
			}
			s, err := cronexpr.Parse(a.Schedule)
			if err != nil {
				errs = append(errs, fmt.Errorf("pipeline %s asset %s: schedule %q: %w", p.name, a.Key, a.Schedule, err))
				continue
			}
			sched := cronSchedule{s: s, loc: scheduleLocation(a)}
			pipeline, asset := p.name, a.Key
			jobs = append(jobs, river.NewPeriodicJob(sched, func() (river.JobArgs, *river.InsertOpts) {
				tick := time.Now().UTC().Truncate(time.Second)
				return tickArgs{Pipeline: pipeline, Asset: asset, Tick: tick.Format(time.RFC3339)}, nil
			}, &river.PeriodicJobOpts{ID: "flowstone." + pipeline + "." + asset}))
		}
	}
	return jobs, errors.Join(errs...)
}

// tick materializes a scheduled asset: the newest complete partition of a
// time-partitioned asset (once per partition), or the asset itself (once
// per tick). The asset is computed, not reused; a scheduled run with
// config= runs with that config.
func (e *Engine) tick(ctx context.Context, args tickArgs, p *Pipeline, a *AssetDef) error {
	at, err := time.Parse(time.RFC3339, args.Tick)
	if err != nil {
		return river.JobCancel(fmt.Errorf("schedule tick %q: %w", args.Tick, err))
	}
	// A tick means "compute this now": the asset is forced, its upstreams
	// reused when up to date.
	req := Request{Targets: []string{a.Key}, Config: a.ScheduleConfig, Force: true, RunKey: "schedule:" + a.Key + ":" + at.Format(time.RFC3339)}
	if a.Partitions != nil {
		ts, ok := a.Partitions.(flowstone.TimeWindowSet)
		if !ok {
			return river.JobCancel(fmt.Errorf("asset %s: a schedule needs a time partition set, not %s", a.Key, a.Partitions.Kind()))
		}
		// The window containing the tick is still open: take the one
		// before it.
		part, ok := ts.Previous(ts.Key(at))
		if !ok || ts.Validate(part) != nil {
			e.log.InfoContext(ctx, "schedule tick before the first complete partition", "pipeline", p.name, "asset", a.Key, "tick", at)
			return nil
		}
		req.Partition = part
		req.RunKey = "schedule:" + a.Key + ":" + string(part)
	}
	run, err := e.Materialize(ctx, p, req)
	if err != nil {
		// A scheduled asset that needs config it cannot get fails loudly.
		e.log.ErrorContext(ctx, "scheduled run refused", "pipeline", p.name, "asset", a.Key, "error", err)
		return river.JobCancel(fmt.Errorf("schedule of %s: %w", a.Key, err))
	}
	e.log.InfoContext(ctx, "scheduled run", "pipeline", p.name, "asset", a.Key, "run", run.ID, "partition", req.Partition, "existing", run.Existing)
	return nil
}
