package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Markdown writes the reference of app's command line as Markdown: every
// command with its usage, description, examples and flags, and the global
// flags. The examples speak of app's pipelines, as its --help does.
// docs/cli.md's reference is written by it, and a program can write its
// own the same way.
func Markdown(ctx context.Context, app App, w io.Writer) error {
	if app.Name == "" {
		app.Name = "flowstone"
	}
	s := &session{app: app, stdout: io.Discard, stderr: io.Discard, ctx: ctx}
	root := s.rootCommand()
	var bs []runtime.Binding
	if app.Bind != nil {
		var err error
		if bs, err = app.Bind(ctx); err != nil {
			return fmt.Errorf("bind pipelines: %w", err)
		}
	}
	s.describeCommands(root, s.pipelineFacts(choosePipeline(bs, "")))

	var b strings.Builder
	fmt.Fprintf(&b, "### Global flags\n\n")
	flagTable(&b, root.PersistentFlags())
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" {
				continue
			}
			fmt.Fprintf(&b, "### %s\n\n", strings.TrimPrefix(sub.CommandPath(), root.Name()+" "))
			fmt.Fprintf(&b, "```\n%s\n```\n\n", sub.UseLine())
			desc := sub.Long
			if desc == "" {
				desc = sub.Short + "."
			}
			fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(desc))
			if sub.Example != "" {
				fmt.Fprintf(&b, "```\n%s\n```\n\n", sub.Example)
			}
			flagTable(&b, sub.LocalNonPersistentFlags())
			walk(sub)
		}
	}
	walk(root)
	_, err := io.WriteString(w, strings.TrimRight(b.String(), "\n")+"\n")
	return err
}

// flagTable writes a flag set as a Markdown table, or nothing when it is
// empty (the help flag left out).
func flagTable(b *strings.Builder, fs *pflag.FlagSet) {
	var rows []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Hidden {
			return
		}
		name := "`--" + f.Name
		if f.Value.Type() != "bool" {
			name += " " + strings.ToUpper(f.Value.Type())
		}
		name += "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			def = "`" + f.DefValue + "`"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", name, def, strings.ReplaceAll(f.Usage, "|", `\|`)))
	})
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "| flag | default | |\n|---|---|---|\n%s\n\n", strings.Join(rows, "\n"))
}
