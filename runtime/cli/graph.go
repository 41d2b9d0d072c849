package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) graphCommand() *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "graph",
		Short: "Print the pipeline's asset graph as Mermaid or Graphviz dot",
		Long: `Graph prints the pipeline's assets and dependencies. Value dependencies are
solid edges, ordering-only dependencies (deps=) dashed, and the others are
labelled with their kind (outcome, partitions, previous). It reads no
database.`,
		Args: cobra.NoArgs,
		RunE: run(func(c *cobra.Command, _ []string) error {
			_, p, err := s.readBindings(c.Context())
			if err != nil {
				return err
			}
			switch format {
			case "mermaid":
				writeMermaid(s.stdout, p)
			case "dot":
				writeDot(s.stdout, p)
			default:
				return usageErr("--format %q: want mermaid or dot", format)
			}
			return nil
		}),
	}
	c.Flags().StringVarP(&format, "format", "f", "mermaid", "output format: mermaid or dot")
	return c
}

func writeMermaid(w io.Writer, p *runtime.Pipeline) {
	fmt.Fprintln(w, "flowchart LR")
	for _, a := range p.Assets() {
		label := strconv.Quote(a.Key)
		switch a.Kind {
		case "router":
			fmt.Fprintf(w, "    %s{%s}\n", mermaidID(a.Key), label)
		case "gate":
			fmt.Fprintf(w, "    %s{{%s}}\n", mermaidID(a.Key), label)
		default:
			fmt.Fprintf(w, "    %s[%s]\n", mermaidID(a.Key), label)
		}
	}
	for _, a := range p.Assets() {
		for _, d := range a.Deps {
			from, to := mermaidID(d.Asset), mermaidID(a.Key)
			switch d.Kind {
			case runtime.DepValue:
				fmt.Fprintf(w, "    %s --> %s\n", from, to)
			case runtime.DepOrder:
				fmt.Fprintf(w, "    %s -.-> %s\n", from, to)
			case runtime.DepPrevious:
				fmt.Fprintf(w, "    %s -. %s .-> %s\n", from, d.Kind, to)
			default:
				fmt.Fprintf(w, "    %s -- %s --> %s\n", from, d.Kind, to)
			}
		}
	}
}

// mermaidID keeps an asset key as the node's ID unless Mermaid reserves
// the word.
func mermaidID(key string) string {
	switch key {
	case "end", "graph", "flowchart", "subgraph", "style", "class", "classDef", "click", "linkStyle", "direction", "default":
		return key + "_"
	}
	return key
}

func writeDot(w io.Writer, p *runtime.Pipeline) {
	fmt.Fprintf(w, "digraph %s {\n", strconv.Quote(p.Name()))
	fmt.Fprintln(w, "    rankdir=LR;")
	fmt.Fprintln(w, "    node [shape=box];")
	for _, a := range p.Assets() {
		switch a.Kind {
		case "router":
			fmt.Fprintf(w, "    %s [shape=diamond];\n", strconv.Quote(a.Key))
		case "gate":
			fmt.Fprintf(w, "    %s [shape=hexagon];\n", strconv.Quote(a.Key))
		default:
			fmt.Fprintf(w, "    %s;\n", strconv.Quote(a.Key))
		}
	}
	for _, a := range p.Assets() {
		for _, d := range a.Deps {
			attrs := ""
			switch d.Kind {
			case runtime.DepValue:
			case runtime.DepOrder:
				attrs = " [style=dashed]"
			case runtime.DepPrevious:
				attrs = fmt.Sprintf(" [style=dotted, label=%q]", d.Kind.String())
			default:
				attrs = fmt.Sprintf(" [label=%q]", d.Kind.String())
			}
			fmt.Fprintf(w, "    %s -> %s%s;\n", strconv.Quote(d.Asset), strconv.Quote(a.Key), attrs)
		}
	}
	fmt.Fprintln(w, "}")
}
