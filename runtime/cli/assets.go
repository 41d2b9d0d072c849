package cli

import (
	"fmt"
	"strings"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) assetsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "assets",
		Short: "List the pipeline's assets with their last materialization",
		Args:  cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			eng, p, err := s.openPipeline(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			latest, err := eng.Latest(ctx, p.Name())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, a := range p.Assets() {
				parts := ""
				if a.Partitions != nil {
					parts = a.Partitions.Kind()
				}
				row := []string{a.Key, a.Kind, parts, depList(a.Deps)}
				if m, ok := latest[a.Key]; ok {
					row = append(row, m.Status, string(m.Partition), timestamp(m.FinishedAt))
				} else {
					row = append(row, "never", "", "")
				}
				rows = append(rows, row)
			}
			return table(s.stdout, []string{"ASSET", "KIND", "PARTITIONS", "DEPS", "LAST STATUS", "PARTITION", "MATERIALIZED"}, rows)
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
