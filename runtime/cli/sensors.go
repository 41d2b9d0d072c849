package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (s *session) sensorsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sensors",
		Short: "List the pipeline's sensors with their stored cursor and last evaluation",
		Long: `Sensors lists the sensors of the pipeline (of every bound pipeline when there
are several and --pipeline is not given): how often they are evaluated, the
cursor stored for their next evaluation, how many evaluations and runs they
made, and the last evaluation's error. Worker processes evaluate them; a
sensor not evaluated yet shows "never".`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			eng, bs, err := s.openAllRead(ctx)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			several := len(bs) > 1 && s.pipeline == ""
			var rows [][]string
			for _, b := range bs {
				p := b.Pipeline()
				if p == nil || (s.pipeline != "" && p.Name() != s.pipeline) {
					continue
				}
				stored, err := eng.Sensors(ctx, p.Name())
				if err != nil {
					return err
				}
				for _, def := range p.Sensors() {
					name := def.Name
					if several {
						name = p.Name() + "." + name
					}
					row := []string{name, def.Every.String(), strings.Join(def.Targets, ",")}
					found := false
					for _, st := range stored {
						if st.Name == def.Name {
							cursor := st.Cursor
							if cursor == "" {
								cursor = `""`
							}
							row = append(row, cursor, thousands(st.Evaluations), thousands(st.Runs), oneLine(st.LastError), timestamp(st.EvaluatedAt))
							found = true
						}
					}
					if !found {
						row = append(row, "", "0", "0", "", "never")
					}
					rows = append(rows, row)
				}
			}
			if len(rows) == 0 {
				fmt.Fprintln(s.stderr, "no sensors: declare one with //flowstone:sensor every=D targets=ASSET")
				return nil
			}
			return table(s.stdout, []string{"SENSOR", "EVERY", "TARGETS", "CURSOR", "EVALUATIONS", "RUNS", "LAST ERROR", "EVALUATED AT"}, rows)
		}),
	}
}
