package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) pruneCommand() *cobra.Command {
	var olderThan string
	var keep, batch int
	var dryRun bool
	c := &cobra.Command{
		Use:   "prune --older-than AGE [--keep-latest N] [--dry-run]",
		Short: "Delete history older than an age",
		Long: `Prune deletes the history that finished more than AGE ago: runs, finished
backfills, River's finished jobs, and materializations with their values and
lineage. It keeps, for each asset and partition, the newest materialization
and the --keep-latest newest successful ones with their values, so loading
values and reusing results work as before; the materializations their
lineage points to (without their values); and everything of runs still
running. It works in short transactions of --batch rows, so workers can run
meanwhile. With --pipeline it prunes one pipeline (River's jobs of every
pipeline either way). --dry-run counts and deletes nothing.

AGE is a Go duration (720h, 90m) or a number of days (30d).`,
		Example: strings.ReplaceAll(`  NAME prune --older-than 30d --dry-run
  NAME prune --older-than 30d --keep-latest 3`, "NAME", s.app.Name),
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if olderThan == "" {
				return usageErr("give --older-than, e.g. --older-than 30d")
			}
			age, err := parseAge(olderThan)
			if err != nil {
				return usageErr("--older-than %q: %v", olderThan, err)
			}
			if keep < 0 || batch < 0 {
				return usageErr("--keep-latest and --batch take positive numbers")
			}
			// A dry run only reads: it creates and migrates nothing.
			open := func(ctx context.Context) (*runtime.Engine, []runtime.Binding, error) { return s.openAll(ctx, false) }
			if dryRun {
				open = s.openAllRead
			}
			eng, _, err := open(ctx)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			res, err := eng.Prune(ctx, runtime.PruneRequest{OlderThan: age, KeepLatest: keep, Pipeline: s.pipeline,
				DryRun: dryRun, BatchSize: batch})
			printPrune(s, res, dryRun)
			return err
		}),
	}
	f := c.Flags()
	f.StringVar(&olderThan, "older-than", "", "delete history that finished longer ago than this: 720h, 30d")
	f.IntVar(&keep, "keep-latest", 1, "successful materializations kept with their values per asset and partition, whatever their age")
	f.BoolVar(&dryRun, "dry-run", false, "count what would be deleted; delete nothing")
	f.IntVar(&batch, "batch", 1000, "rows deleted per transaction")
	return c
}

// parseAge reads a Go duration or a number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("want a number of days before d")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("want a duration such as 720h or 30d")
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("want a positive age")
	}
	return d, nil
}

// printPrune writes what was (or would be) deleted.
func printPrune(s *session, res runtime.PruneResult, dryRun bool) {
	if res.Before.IsZero() {
		return
	}
	head := "deleted"
	if dryRun {
		head = "would delete (dry run)"
	}
	fmt.Fprintf(s.stdout, "history that finished before %s, %s:\n", timestamp(res.Before), head)
	for _, r := range []struct {
		what string
		n    int64
	}{
		{"runs", res.Runs},
		{"backfills", res.Backfills},
		{"materializations", res.Materializations},
		{"lineage rows", res.Lineage},
		{"check results", res.Checks},
		{"values of kept materializations", res.Values},
		{"River jobs", res.Jobs},
		{"automation decisions", res.Decisions},
	} {
		fmt.Fprintf(s.stdout, "  %-32s %10s\n", r.what, thousands(int(r.n)))
	}
	if res.ExternalDeleted > 0 || res.ExternalLeft > 0 {
		fmt.Fprintf(s.stdout, "  values in IO managers: %s deleted, %s left (their IO manager cannot delete)\n",
			thousands(int(res.ExternalDeleted)), thousands(int(res.ExternalLeft)))
	}
}
