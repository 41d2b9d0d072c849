package cli

import (
	"fmt"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) automationCommand() *cobra.Command {
	var asset string
	var limit int
	c := &cobra.Command{
		Use:   "automation [--asset ASSET] [--limit N]",
		Short: "List the decisions of declarative automation (auto=), newest first",
		Long: `Automation lists what declarative automation decided, newest first: for each
asset with auto=eager or auto=missing and partition an evaluation looked
at, whether it launched a run (and which), skipped it (already running:
the run it waits for is listed, and cancelling that run lets the next
evaluation launch it; nothing new), deferred it (backpressure: --max-automated-runs runs in
flight; a window that has not ended) or was refused, and why: the upstream
materializations that triggered it, or the partition that was never
materialized. Worker processes evaluate automation every
--automation-interval, one at a time; the first line says when the
pipeline was last evaluated.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			bs, p, err := s.readBindings(ctx)
			if err != nil {
				return err
			}
			if asset != "" {
				if _, err := p.Lookup(asset); err != nil {
					return usageErr("%v", err)
				}
			}
			auto := 0
			for _, a := range p.Assets() {
				if a.Auto != "" {
					auto++
				}
			}
			if auto == 0 {
				fmt.Fprintln(s.stderr, "no automated assets: add auto=eager or auto=missing to an asset's directive")
			}
			eng, err := s.openRead(ctx, bs)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			sts, err := eng.AutomationStatus(ctx)
			if err != nil {
				return err
			}
			for _, st := range sts {
				if st.Pipeline != p.Name() {
					continue
				}
				if st.Evaluations == 0 {
					fmt.Fprintf(s.stdout, "pipeline %s: %d automated assets, not evaluated yet (a worker evaluates every --automation-interval)\n", p.Name(), auto)
				} else {
					fmt.Fprintf(s.stdout, "pipeline %s: %d automated assets, %d evaluations, the last at %s\n", p.Name(), auto, st.Evaluations, timestamp(st.EvaluatedAt))
				}
			}
			ds, err := eng.AutomationDecisions(ctx, runtime.DecisionFilter{Pipeline: p.Name(), Asset: asset, Limit: limit})
			if err != nil {
				return err
			}
			if len(ds) == 0 {
				fmt.Fprintln(s.stdout, "no decisions yet")
				return nil
			}
			var rows [][]string
			for _, d := range ds {
				rows = append(rows, []string{timestamp(d.EvaluatedAt), d.Asset, orDash(string(d.Partition)), string(d.Decision), orDash(d.RunID), d.Reason})
			}
			fmt.Fprintln(s.stdout)
			return table(s.stdout, []string{"EVALUATED", "ASSET", "PARTITION", "DECISION", "RUN", "REASON"}, rows)
		}),
	}
	c.Flags().StringVar(&asset, "asset", "", "only this asset's decisions")
	c.Flags().IntVarP(&limit, "limit", "n", 20, "how many of the newest decisions to list")
	return c
}
