package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) logsCommand() *cobra.Command {
	var partition string
	c := &cobra.Command{
		Use:   "logs RUN_ID [ASSET] [--partition KEY]",
		Short: "Print what asset code logged in a run, attempt by attempt",
		Long: `Logs prints what asset code logged through flowstone.Logger in a run (at
Info level and above), whichever process ran it: every asset's attempts, or
one asset's, at one partition with --partition. Each attempt keeps up to
64 KiB of lines; past that a last line says the log was truncated.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			byPartition := c.Flags().Changed("partition")
			if byPartition && len(args) < 2 {
				return usageErr("logs --partition needs an asset")
			}
			eng, _, err := s.openAllRead(ctx)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			ref := runtime.Ref{RunID: args[0]}
			if byPartition {
				ref.Asset, ref.Partition = args[1], flowstone.Partition(partition)
			}
			attempts, err := eng.Logs(ctx, ref)
			if errors.Is(err, runtime.ErrNotInRun) && !errors.Is(err, runtime.ErrRunNotFound) {
				return &exitError{code: ExitUsage, err: err}
			}
			if err != nil {
				return err
			}
			if len(args) == 2 && !byPartition {
				if err := s.assetInRun(ctx, eng, args[0], args[1]); err != nil {
					return err
				}
				attempts = slices.DeleteFunc(attempts, func(a runtime.LogAttempt) bool { return a.Ref.Asset != args[1] })
			}
			if len(attempts) == 0 {
				fmt.Fprintln(s.stdout, "nothing logged")
				return nil
			}
			for i, a := range attempts {
				if i > 0 {
					fmt.Fprintln(s.stdout)
				}
				writeLogAttempt(s.stdout, a)
			}
			return nil
		}),
	}
	c.Flags().StringVar(&partition, "partition", "", "only the asset's attempts at this partition")
	return c
}

// assetInRun refuses, as a usage error naming what the run holds, an
// asset that is not in the run.
func (s *session) assetInRun(ctx context.Context, eng *runtime.Engine, run, asset string) error {
	res, err := eng.Run(ctx, run)
	if err != nil {
		return err
	}
	if _, ok := res.ByPartition[asset]; !ok {
		return usageErr("run %s has no asset %q (it has %s)", run, asset, strings.Join(res.Order, ", "))
	}
	return nil
}

// writeLogAttempt prints an attempt's heading and its lines as
// "15:04:05.000 INFO message key=value ...".
func writeLogAttempt(w io.Writer, a runtime.LogAttempt) {
	fmt.Fprintf(w, "== %s, attempt %d\n", a.Ref, a.Attempt)
	for _, l := range a.Lines {
		var b strings.Builder
		if !l.Time.IsZero() {
			b.WriteString(l.Time.Local().Format("15:04:05.000 "))
		}
		fmt.Fprintf(&b, "%-5s %s", l.Level, l.Message)
		for _, k := range slices.Sorted(maps.Keys(l.Attrs)) {
			fmt.Fprintf(&b, " %s=%s", k, attrText(l.Attrs[k]))
		}
		fmt.Fprintln(w, b.String())
	}
}

// attrText prints a string as itself (quoted when it has spaces) and
// anything else as JSON.
func attrText(v any) string {
	if s, ok := v.(string); ok {
		if strings.ContainsAny(s, " \t\n\"=") {
			return fmt.Sprintf("%q", s)
		}
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// previewLimit bounds the value show prints.
const previewLimit = 2 << 10

func (s *session) showCommand() *cobra.Command {
	var partition string
	c := &cobra.Command{
		Use:   "show ASSET [--partition KEY]",
		Short: "Describe an asset and its newest materialization, with a preview of its value",
		Long: `Show prints an asset's definition (kind, description, code version,
dependencies and dependents) and its newest materialization of any status
(at one partition with --partition): its run, status, attempts, metadata,
the materializations it read, and the first 2 KiB of its newest successful
value.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			bs, p, err := s.bindings(ctx)
			if err != nil {
				return err
			}
			a, err := p.Lookup(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			eng, err := s.open(ctx, bs, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			byPartition := c.Flags().Changed("partition")
			tw := tabwriter.NewWriter(s.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintf(tw, "asset:\t%s (pipeline %s)\n", a.Key, p.Name())
			if a.Kind != "" {
				fmt.Fprintf(tw, "kind:\t%s\n", a.Kind)
			}
			if a.Description != "" {
				fmt.Fprintf(tw, "description:\t%s\n", oneLine(a.Description))
			}
			if a.CodeVersion != "" {
				fmt.Fprintf(tw, "code version:\t%s\n", a.CodeVersion)
			}
			if a.Partitions != nil {
				fmt.Fprintf(tw, "partitions:\t%s\n", a.Partitions.Kind())
			}
			fmt.Fprintf(tw, "upstream:\t%s\n", orDash(depList(a.Deps)))
			fmt.Fprintf(tw, "downstream:\t%s\n", orDash(strings.Join(p.Downstream(a.Key), ", ")))
			ms, err := eng.Materializations(ctx, p.Name(), a.Key, 200)
			if err != nil {
				return err
			}
			if byPartition {
				ms = slices.DeleteFunc(ms, func(m runtime.Materialization) bool { return m.Partition != flowstone.Partition(partition) })
			}
			if len(ms) == 0 {
				fmt.Fprintf(tw, "\nmaterialized:\tnever\n")
				return tw.Flush()
			}
			m := ms[0]
			fmt.Fprintf(tw, "\nnewest:\t%s\n", m.ID)
			if m.Partition != "" {
				fmt.Fprintf(tw, "partition:\t%s\n", m.Partition)
			}
			fmt.Fprintf(tw, "run:\t%s\n", m.RunID)
			fmt.Fprintf(tw, "status:\t%s (attempts %d)\n", m.Status, m.Attempts)
			fmt.Fprintf(tw, "finished:\t%s (%s)\n", timestamp(m.FinishedAt), orDash(duration(m.StartedAt, m.FinishedAt)))
			if m.Error != "" {
				fmt.Fprintf(tw, "error:\t%s\n", oneLine(m.Error))
			}
			for _, k := range slices.Sorted(maps.Keys(m.Metadata)) {
				fmt.Fprintf(tw, "metadata %s:\t%s\n", k, attrText(m.Metadata[k]))
			}
			for _, u := range m.Upstream {
				at := ""
				if u.Partition != "" {
					at = " (partition " + string(u.Partition) + ")"
				}
				fmt.Fprintf(tw, "read:\t%s%s %s\n", u.Asset, at, u.Materialization)
			}
			if err := showChecks(ctx, tw, eng, m.ID); err != nil {
				return err
			}
			if err := showStale(ctx, tw, eng, p, a.Key); err != nil {
				return err
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if !a.HasValue {
				return nil
			}
			v, err := runtime.Load[json.RawMessage](ctx, eng, p.Name(), a.Key, m.Partition)
			if errors.Is(err, runtime.ErrNotMaterialized) {
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(s.stdout, "\nvalue:\n%s\n", preview(v))
			return nil
		}),
	}
	c.Flags().StringVar(&partition, "partition", "", "the newest materialization at this partition")
	return c
}

// preview indents a JSON value and cuts it at previewLimit.
func preview(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, v, "  ", "  ") != nil {
		b.Reset()
		b.Write(v)
	}
	out := "  " + b.String()
	if len(out) > previewLimit {
		out = strings.ToValidUTF8(out[:previewLimit], "") + fmt.Sprintf("\n  … (%d bytes in all)", len(v))
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
