package runtime

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowstone-go/flowstone"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// sensorJobs returns a River periodic job per sensor of the bound
// pipelines: River's leader inserts each tick, and a tick is not inserted
// while the previous evaluation is still queued or running, so a sensor is
// evaluated by one process at a time.
func (e *Engine) sensorJobs() []*river.PeriodicJob {
	var jobs []*river.PeriodicJob
	for _, p := range e.Pipelines() {
		for _, s := range p.sensors {
			pipeline, name := p.name, s.Name
			jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(s.Every), func() (river.JobArgs, *river.InsertOpts) {
				return sensorArgs{Pipeline: pipeline, Sensor: name}, &river.InsertOpts{
					MaxAttempts: 1,
					UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
						rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
						rivertype.JobStateRetryable, rivertype.JobStateScheduled,
					}},
				}
			}, &river.PeriodicJobOpts{ID: "flowstone.sensor." + pipeline + "." + name, RunOnStart: true}))
		}
	}
	return jobs
}

// SensorStatus is a sensor's stored state.
type SensorStatus struct {
	Pipeline    string
	Name        string
	Cursor      string
	Evaluations int
	// Runs counts the runs its requests started (requests whose run key
	// had been used already start none).
	Runs int
	// LastError is the last evaluation's error or panic; empty when it
	// succeeded.
	LastError   string
	EvaluatedAt time.Time
}

// Sensors returns the stored state of the sensors of pipeline (every
// pipeline when empty) that have been evaluated.
func (e *Engine) Sensors(ctx context.Context, pipeline string) ([]SensorStatus, error) {
	rows, err := e.st.Sensors(ctx, e.be.pool(), pipeline)
	if err != nil {
		return nil, err
	}
	out := make([]SensorStatus, len(rows))
	for i, s := range rows {
		out[i] = SensorStatus{Pipeline: s.Pipeline, Name: s.Name, Cursor: s.Cursor, Evaluations: s.Evaluations, Runs: s.Runs,
			LastError: s.LastError, EvaluatedAt: micros(s.EvaluatedAt)}
	}
	return out, nil
}

// evaluateSensor runs one evaluation: the sensor function with its stored
// cursor; each run request becomes a run (once per run key); the new cursor
// is stored. An error or panic is recorded, the cursor kept, and the next
// interval tries again.
func (e *Engine) evaluateSensor(ctx context.Context, p *Pipeline, b Binding, name string) error {
	var s *SensorDef
	for _, x := range p.sensors {
		if x.Name == name {
			s = x
		}
	}
	if s == nil {
		return river.JobCancel(fmt.Errorf("sensor %q is not in pipeline %s as bound in this process", name, p.name))
	}
	q := e.be.pool()
	cursor, err := e.st.SensorCursor(ctx, q, p.name, name)
	if err != nil {
		return err
	}
	res, err := callSensor(ctx, s, cursor, &Inputs{asset: "sensor " + name, resources: b.resources})
	if err != nil {
		e.log.ErrorContext(ctx, "sensor failed", "pipeline", p.name, "sensor", name, "error", err)
		return e.st.SensorFailed(ctx, q, p.name, name, err.Error())
	}
	if err := validCursor(res.Cursor); err != nil {
		// Stored, it would be read back at every evaluation and shown on
		// every page; PostgreSQL refuses invalid text, which would start
		// the requests again at every interval without moving on.
		err = fmt.Errorf("sensor %s returned %w", name, err)
		e.log.ErrorContext(ctx, "sensor refused", "pipeline", p.name, "sensor", name, "error", err)
		return e.st.SensorFailed(ctx, q, p.name, name, err.Error())
	}
	started := 0
	var errs []string
	for i, r := range res.Requests {
		// A request computes its targets unless it opts into reuse.
		req := Request{Targets: s.Targets, Partition: r.Partition, Config: r.Config, Force: !r.Reuse}
		if r.RunKey != "" {
			req.RunKey = "sensor:" + name + ":" + r.RunKey
		}
		run, err := e.Materialize(ctx, p, req)
		if err != nil {
			errs = append(errs, fmt.Sprintf("request %d (run key %s): %v", i, flowstone.QuoteKey(r.RunKey), err))
			continue
		}
		if !run.Existing {
			started++
		}
	}
	lastErr := strings.Join(errs, "; ")
	if lastErr != "" {
		e.log.ErrorContext(ctx, "sensor requests refused", "pipeline", p.name, "sensor", name, "error", lastErr)
	}
	return e.st.SensorEvaluated(ctx, q, p.name, name, res.Cursor, started, lastErr)
}

// MaxSensorCursor bounds the cursor a sensor returns, in bytes: a cursor
// says where the sensor got to (an offset, a timestamp, a key), not what
// it saw. A longer one fails the evaluation with ErrBadCursor.
const MaxSensorCursor = 64 << 10

// validCursor refuses a cursor the engine does not store.
func validCursor(c string) error {
	switch {
	case len(c) > MaxSensorCursor:
		return fmt.Errorf("%w: %d bytes, more than the limit of %d (runtime.MaxSensorCursor): keep where the sensor got to, not the data",
			ErrBadCursor, len(c), MaxSensorCursor)
	case !utf8.ValidString(c):
		return fmt.Errorf("%w: not valid UTF-8 (encode binary state, e.g. with base64)", ErrBadCursor)
	case strings.IndexByte(c, 0) >= 0:
		return fmt.Errorf("%w: holds a NUL byte", ErrBadCursor)
	}
	return nil
}

func callSensor(ctx context.Context, s *SensorDef, cursor string, in *Inputs) (res flowstone.SensorResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	return s.Run(ctx, cursor, in)
}
