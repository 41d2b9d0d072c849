package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/flowstone-go/flowstone/runtime"

	"github.com/spf13/cobra"
)

func (s *session) statusCommand() *cobra.Command {
	var limit int
	var watch bool
	c := &cobra.Command{
		Use:   "status [RUN_ID]",
		Short: "Show one run's assets, or the latest runs",
		Long: `Status shows one run's assets, or without a run ID the latest runs of the
pipeline (of every bound pipeline when there are several and --pipeline is
not given).

With --follow it follows the run like materialize does, whichever
processes work on it, and exits 0 when it succeeded, 1 when it failed or was
cancelled.`,
		Args: cobra.MaximumNArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if watch && len(args) == 0 {
				return usageErr("status --follow needs a run ID")
			}
			eng, bs, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			if len(args) == 1 {
				res, err := eng.Run(ctx, args[0])
				if err != nil {
					return err
				}
				if watch {
					fmt.Fprintf(s.stdout, "run %s: pipeline %s%s, %d assets, %s\n", res.ID, res.Pipeline, partitionNote(res.Partition), len(res.Order), res.Status)
					return s.followAndSummarize(ctx, eng, runtime.Run{ID: res.ID, Pipeline: res.Pipeline, Partition: res.Partition, Assets: res.Order})
				}
				tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintf(tw, "run:\t%s\n", res.ID)
				fmt.Fprintf(tw, "pipeline:\t%s\n", res.Pipeline)
				if res.Partition != "" {
					fmt.Fprintf(tw, "partition:\t%s\n", res.Partition)
				}
				fmt.Fprintf(tw, "status:\t%s (%s)\n", res.Status, countLine(res))
				fmt.Fprintf(tw, "started:\t%s\n", timestamp(res.CreatedAt))
				if !res.FinishedAt.IsZero() {
					fmt.Fprintf(tw, "finished:\t%s (%s)\n", timestamp(res.FinishedAt), duration(res.CreatedAt, res.FinishedAt))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				fmt.Fprintln(s.stdout)
				return runTableWithProgress(ctx, s.stdout, eng, res)
			}
			// The runs of the chosen pipeline; of all when several are
			// bound and none is chosen.
			pipeline := s.pipeline
			if pipeline == "" && len(bs) == 1 && bs[0].Pipeline() != nil {
				pipeline = bs[0].Pipeline().Name()
			}
			runs, err := eng.Runs(ctx, pipeline, limit)
			if err != nil {
				return err
			}
			if len(runs) == 0 {
				fmt.Fprintln(s.stdout, "no runs yet")
				return nil
			}
			var rows [][]string
			for _, r := range runs {
				pending := "" // what is left matters only while it runs
				if !r.Status.Terminal() {
					pending = fmt.Sprint(r.Pending)
				}
				rows = append(rows, []string{r.ID, r.Pipeline, string(r.Partition), string(r.Status),
					timestamp(r.CreatedAt), duration(r.CreatedAt, r.FinishedAt), pending, fmt.Sprint(r.Failed)})
			}
			return table(s.stdout, []string{"RUN", "PIPELINE", "PARTITION", "STATUS", "STARTED", "DURATION", "PENDING", "FAILED"}, rows)
		}),
	}
	c.Flags().IntVarP(&limit, "limit", "n", 20, "how many of the latest runs to list")
	c.Flags().BoolVarP(&watch, "follow", "f", false, "follow the run until it finishes")
	return c
}

func (s *session) cancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel RUN_ID",
		Short: "Cancel a run: its queued and running assets stop",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			res, err := eng.Run(ctx, args[0])
			if err != nil {
				return err
			}
			if res.Status.Terminal() {
				fmt.Fprintf(s.stdout, "run %s already %s: nothing to cancel\n", res.ID, res.Status)
				return nil
			}
			if err := eng.Cancel(ctx, res.ID); err != nil {
				return err
			}
			if res, err = eng.Run(ctx, res.ID); err != nil {
				return err
			}
			fmt.Fprintf(s.stdout, "run %s %s: %s\n", res.ID, res.Status, countLine(res))
			return nil
		}),
	}
}
