package cli

import (
	"fmt"
	"strings"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) assetsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "assets [SELECTION...]",
		Short: "List the pipeline's assets with their groups, tags and last materialization",
		Long: `Assets lists the pipeline's assets in topological order (those a selection
names, when one is given) with their kind, group, tags, partition set and
dependencies, and their newest materialization of any status and partition.
Below the table, each stale asset is listed with why: its code version
changed, or an upstream was materialized again, since its newest
successful materialization (or an upstream is stale).`,
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			bs, p, err := s.readBindings(ctx)
			if err != nil {
				return err
			}
			shown := p.Assets()
			if len(args) > 0 {
				keys, err := p.Select(strings.Join(args, " "))
				if err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
				shown = shown[:0]
				for _, k := range keys {
					shown = append(shown, p.Asset(k))
				}
			}
			eng, err := s.openRead(ctx, bs)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			latest, err := eng.Latest(ctx, p.Name())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, a := range shown {
				parts := ""
				if a.Partitions != nil {
					parts = a.Partitions.Kind()
				}
				row := []string{a.Key, a.Kind, a.Group, strings.Join(a.Tags, ","), parts, depList(a.Deps)}
				if m, ok := latest[a.Key]; ok {
					row = append(row, m.Status, string(m.Partition), timestamp(m.FinishedAt))
				} else {
					row = append(row, "never", "", "")
				}
				rows = append(rows, row)
			}
			if err := table(s.stdout, []string{"ASSET", "KIND", "GROUP", "TAGS", "PARTITIONS", "DEPS", "LAST STATUS", "PARTITION", "MATERIALIZED"}, rows); err != nil {
				return err
			}
			return s.printStale(ctx, eng, p, shown)
		}),
	}
}

// depList names an asset's dependencies, marking those that are not plain
// values: "raw_orders, audit (order)".
func depList(deps []runtime.Dep) string {
	out := make([]string, len(deps))
	for i, d := range deps {
		out[i] = d.Asset
		if d.Kind != runtime.DepValue {
			out[i] = fmt.Sprintf("%s (%s)", d.Asset, d.Kind)
		}
	}
	return strings.Join(out, ", ")
}
