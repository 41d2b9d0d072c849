package runtime

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
)

// Each kind of work is its own job kind, per pipeline, so River fetches and
// works them with their own workers.
func TestJobKindsArePerPipelineAndWork(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		var calls atomic.Int64
		p := backfillPipeline(0, &calls)
		e := openEngine(t, db.config(t), Bind(p, nil))
		id, err := e.Backfill(ctx, p, BackfillRequest{Targets: []string{"total"}, From: "2024-01-01", To: "2024-01-02"})
		if err != nil {
			t.Fatal(err)
		}
		if b := waitBackfill(t, e, id); b.Status != "succeeded" {
			t.Fatalf("backfill: %+v", b)
		}
		rs, err := e.be.pool().Query(ctx, `SELECT DISTINCT kind FROM river_job ORDER BY kind`)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		var kinds []string
		for rs.Next() {
			var k string
			if err := rs.Scan(&k); err != nil {
				t.Fatal(err)
			}
			kinds = append(kinds, k)
		}
		if want := []string{"flowstone.bf.attempt", "flowstone.bf.backfill"}; !slices.Equal(kinds, want) {
			t.Fatalf("job kinds %v, want %v", kinds, want)
		}
	})
}
