package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func (s *session) freshnessCommand() *cobra.Command {
	var overdueOnly bool
	c := &cobra.Command{
		Use:   "freshness [--overdue]",
		Short: "Judge the assets that have a freshness bound (fresh=) and list the overdue ones",
		Long: `Freshness lists the assets with a freshness bound (fresh=D in their directive)
and whether they are overdue now: an unpartitioned asset when its newest
successful materialization is older than D, a time-partitioned one when its
newest complete partition has not been materialized D after its window
ended. It exits 1 when an asset is overdue, so a cron job or a probe can
alert on it.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			bs, p, err := s.readBindings(ctx)
			if err != nil {
				return err
			}
			eng, err := s.openRead(ctx, bs)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			fs, err := eng.Freshness(ctx, p, time.Now())
			if err != nil {
				return err
			}
			if len(fs) == 0 {
				fmt.Fprintln(s.stderr, "no freshness bounds: add fresh=D to an asset's directive")
				return nil
			}
			var rows [][]string
			overdue := 0
			for _, f := range fs {
				state := "fresh"
				if f.Overdue {
					state = "overdue"
					overdue++
				} else if overdueOnly {
					continue
				}
				rows = append(rows, []string{f.Asset, f.Fresh.String(), orDash(string(f.Partition)), state,
					orDash(timestamp(f.Materialized)), orDash(timestamp(f.Due)), orDash(f.Reason)})
			}
			if err := table(s.stdout, []string{"ASSET", "FRESH", "PARTITION", "STATE", "MATERIALIZED", "DUE", "REASON"}, rows); err != nil {
				return err
			}
			if overdue > 0 {
				return &exitError{code: ExitFailure, err: fmt.Errorf("%d of %d assets overdue", overdue, len(fs))}
			}
			return nil
		}),
	}
	c.Flags().BoolVar(&overdueOnly, "overdue", false, "list only the overdue assets")
	return c
}
