package cli_test

import (
	"testing"
	"time"
)

func TestPruneDeletesOldHistoryAndKeepsThePartitionsStatus(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(0))
		if r := invoke(ctx, app, args(db, "backfill", "total", "--partitions", "2024-01-01,2024-01-02,2024-01-05")...); r.code != 1 {
			t.Fatalf("backfill with a failing partition: want exit 1\n%s", r)
		}
		// Computed again: the first total of 2024-01-01 is superseded.
		if r := invoke(ctx, app, args(db, "materialize", "total", "--partition", "2024-01-01", "--force")...); r.code != 0 {
			t.Fatalf("materialize --force: %s", r)
		}
		time.Sleep(5 * time.Millisecond)

		r := invoke(ctx, app, args(db, "prune", "--older-than", "1ms", "--dry-run")...)
		if r.code != 0 {
			t.Fatalf("prune --dry-run: %s", r)
		}
		wantLine(t, r, `history that finished before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, would delete \(dry run\):`)
		wantLine(t, r, `runs 4`)
		wantLine(t, r, `backfills 1`)
		wantLine(t, r, `materializations 1`)

		r = invoke(ctx, app, args(db, "prune", "--older-than", "1ms")...)
		if r.code != 0 {
			t.Fatalf("prune: %s", r)
		}
		wantLine(t, r, `history that finished before \d{4}-\d\d-\d\d \d\d:\d\d:\d\d, deleted:`)
		wantLine(t, r, `runs 4`)
		wantLine(t, r, `backfills 1`)
		wantLine(t, r, `materializations 1`)
		wantLine(t, r, `lineage rows 1`)

		// The newest of each partition stays, failed or not.
		r = invoke(ctx, app, args(db, "partitions", "total", "raw", "--from", "2024-01-01", "--to", "2024-01-05")...)
		wantLine(t, r, `2024-01-01 ✓ ✓`)
		wantLine(t, r, `2024-01-03 · ·`)
		wantLine(t, r, `2024-01-05 ✗ ✓`)

		for _, bad := range [][]string{{"prune"}, {"prune", "--older-than", "5x"}, {"prune", "--older-than", "-3d"}} {
			if r := invoke(ctx, app, args(db, bad...)...); r.code != 2 {
				t.Errorf("%v: want exit 2\n%s", bad, r)
			}
		}
	})
}
