package cli

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"

	"github.com/spf13/cobra"
)

func (s *session) statusCommand() *cobra.Command {
	var limit int
	var watch bool
	var partition string
	c := &cobra.Command{
		Use:   "status [RUN_ID [--partition KEY]]",
		Short: "Show one run's assets, or the latest runs",
		Long: `Status shows one run's assets, or without a run ID the latest runs of the
pipeline (of every bound pipeline when there are several and --pipeline is
not given). A run shows one row per asset; --partition KEY shows instead
the run's assets at that partition (the 24 hours under a daily target,
say, one at a time).

With --follow it follows the run like materialize does, whichever
processes work on it, and exits 0 when it succeeded, 1 when it failed or was
cancelled.`,
		Args: cobra.MaximumNArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if watch && len(args) == 0 {
				return usageErr("status --follow needs a run ID")
			}
			byPartition := c.Flags().Changed("partition")
			if byPartition && (len(args) == 0 || watch) {
				return usageErr("status --partition needs a run ID, without --follow")
			}
			eng, bs, err := s.openAllRead(ctx)
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
				fmt.Fprintf(tw, "started:\t%s by %s\n", timestamp(res.CreatedAt), res.StartedBy)
				if !res.FinishedAt.IsZero() {
					fmt.Fprintf(tw, "finished:\t%s (%s)\n", timestamp(res.FinishedAt), duration(res.CreatedAt, res.FinishedAt))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if byPartition {
					if res, err = atPartition(res, flowstone.Partition(partition)); err != nil {
						return err
					}
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
					timestamp(r.CreatedAt), r.StartedBy, duration(r.CreatedAt, r.FinishedAt), pending, fmt.Sprint(r.Failed)})
			}
			return table(s.stdout, []string{"RUN", "PIPELINE", "PARTITION", "STATUS", "STARTED", "BY", "DURATION", "PENDING", "FAILED"}, rows)
		}),
	}
	c.Flags().IntVarP(&limit, "limit", "n", 20, "how many of the latest runs to list")
	c.Flags().BoolVarP(&watch, "follow", "f", false, "follow the run until it finishes")
	c.Flags().StringVar(&partition, "partition", "", "show the run's assets at this partition")
	return c
}

// atPartition narrows a run's rows to its assets at partition p; a
// partition the run does not hold is a usage error naming those it does.
func atPartition(res runtime.RunResult, p flowstone.Partition) (runtime.RunResult, error) {
	out := res
	out.Assets, out.Order = map[string]runtime.AssetResult{}, nil
	held := map[flowstone.Partition]bool{}
	for _, k := range res.Order {
		for q := range res.ByPartition[k] {
			held[q] = true
		}
		if a, ok := res.ByPartition[k][p]; ok {
			out.Assets[k] = a
			out.Order = append(out.Order, k)
		}
	}
	if len(out.Order) > 0 {
		return out, nil
	}
	keys := make([]string, 0, len(held))
	for q := range held {
		keys = append(keys, strconv.Quote(string(q)))
	}
	slices.Sort(keys)
	return out, usageErr("%w: run %s holds no asset at partition %q (it holds %s)", runtime.ErrNotInRun, res.ID, p, strings.Join(keys, ", "))
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
