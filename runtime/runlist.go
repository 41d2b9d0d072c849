package runtime

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// What started a run, as RunFilter.StartedBy and FoundRun.StartedBy name it.
const (
	StartedByUser     = "user"
	StartedBySchedule = "schedule"
	StartedBySensor   = "sensor"
	StartedByBackfill = "backfill"
	// StartedByAutomation is a run declarative automation (auto=) started.
	StartedByAutomation = "automation"
)

// RunFilter narrows a run listing; zero fields match every run.
type RunFilter struct {
	Pipeline  string
	Status    RunStatus
	Partition flowstone.Partition
	// StartedBy is StartedByUser (a materialize request, from the API or
	// the command line), StartedBySchedule, StartedBySensor or
	// StartedByBackfill.
	StartedBy string
	// Limit caps the listing; zero means 50.
	Limit int
}

// FoundRun is one line of a filtered run listing.
type FoundRun struct {
	RunSummary
}

// FindRuns lists the newest runs that match f, newest first.
func (e *Engine) FindRuns(ctx context.Context, f RunFilter) ([]FoundRun, error) {
	sf := store.RunFilter{Pipeline: f.Pipeline, Partition: string(f.Partition), Status: store.RunStatus(f.Status), Limit: f.Limit}
	if sf.Limit <= 0 {
		sf.Limit = 50
	}
	switch f.StartedBy {
	case "":
	case StartedByUser:
		sf.Manual = true
	case StartedBySchedule, StartedBySensor, StartedByBackfill, StartedByAutomation:
		sf.KeyPrefix = f.StartedBy + ":"
	default:
		return nil, fmt.Errorf("runs started by %q: want %s, %s, %s, %s or %s", f.StartedBy, StartedByUser, StartedBySchedule,
			StartedBySensor, StartedByBackfill, StartedByAutomation)
	}
	rows, err := e.st.FindRuns(ctx, e.be.pool(), sf)
	if err != nil {
		return nil, err
	}
	out := make([]FoundRun, len(rows))
	for i, r := range rows {
		by := startedBy(r.Key)
		out[i] = FoundRun{RunSummary: RunSummary{StartedBy: by, ID: r.ID, Pipeline: r.Pipeline, Partition: flowstone.Partition(r.Partition),
			Status: RunStatus(r.Status), Pending: r.Open, Failed: r.Failed, CreatedAt: time.UnixMicro(r.CreatedAt), FinishedAt: micros(r.FinishedAt)}}
	}
	return out, nil
}

// Backfills returns the progress of the newest backfills of pipeline
// (every pipeline when empty), newest first; limit zero means 20.
func (e *Engine) Backfills(ctx context.Context, pipeline string, limit int) ([]BackfillStatus, error) {
	if limit <= 0 {
		limit = 20
	}
	ids, err := e.st.BackfillIDs(ctx, e.be.pool(), pipeline, limit)
	if err != nil {
		return nil, err
	}
	out := make([]BackfillStatus, 0, len(ids))
	for _, id := range ids {
		b, err := e.BackfillStatus(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// startedBy says what started a run from its run key.
func startedBy(runKey string) string {
	by, _, _ := strings.Cut(runKey, ":")
	switch by {
	case StartedBySchedule, StartedBySensor, StartedByBackfill, StartedByAutomation:
		return by
	}
	return StartedByUser
}
