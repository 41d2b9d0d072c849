package cli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) checkCommand() *cobra.Command {
	var partition, name string
	c := &cobra.Command{
		Use:   "check ASSET [--partition KEY] [--name CHECK]",
		Short: "Run an asset's checks against its newest materialization, now",
		Long: `Check runs the checks of ASSET (//flowstone:check asset=ASSET), or only the
one named by --name, in this process against the asset's newest successful
materialization (at --partition for a partitioned asset), records their
results with that materialization and prints them. It exits 1 when a check
of severity error failed. Workers run an asset's checks by themselves after
each materialization; this reruns them, after fixing a check or the data.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			bs, p, err := s.bindings(ctx)
			if err != nil {
				return err
			}
			if _, err := p.Lookup(args[0]); err != nil {
				return usageErr("%v", err)
			}
			if len(p.Checks(args[0])) == 0 {
				return usageErr("asset %s has no checks: declare one with //flowstone:check asset=%s", args[0], args[0])
			}
			eng, err := s.open(ctx, bs, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			recs, err := eng.Check(ctx, p, args[0], name, flowstone.Partition(partition))
			if err != nil {
				return err
			}
			if err := checkTable(s.stdout, recs, false); err != nil {
				return err
			}
			for _, r := range recs {
				if !r.Passed && r.Severity == flowstone.SeverityError {
					return &exitError{code: ExitFailure, err: fmt.Errorf("check %s of %s failed: %s", r.Check, r.Asset, oneLine(r.Description))}
				}
			}
			return nil
		}),
	}
	c.Flags().StringVar(&partition, "partition", "", "the partition whose newest materialization is checked")
	c.Flags().StringVar(&name, "name", "", "run only this check")
	return c
}

func (s *session) checksCommand() *cobra.Command {
	var limit int
	c := &cobra.Command{
		Use:   "checks [ASSET] [--limit N]",
		Short: "List the newest check results, with their materialization",
		Long: `Checks lists the newest recorded results of the pipeline's asset checks (of
ASSET only, when given), newest first: the check, the asset and partition,
whether it passed, its severity, whether it blocks dependents, its
description and metadata, and the materialization and run it judged (a
check run alone with the check command has no run).`,
		Args: cobra.MaximumNArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			bs, p, err := s.readBindings(ctx)
			if err != nil {
				return err
			}
			asset := ""
			if len(args) == 1 {
				asset = args[0]
				if _, err := p.Lookup(asset); err != nil {
					return usageErr("%v", err)
				}
			}
			eng, err := s.openRead(ctx, bs)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			recs, err := eng.CheckResults(ctx, p.Name(), asset, limit)
			if err != nil {
				return err
			}
			if len(recs) == 0 {
				fmt.Fprintln(s.stderr, "no check results yet: checks run after each materialization of their asset")
				return nil
			}
			return checkTable(s.stdout, recs, true)
		}),
	}
	c.Flags().IntVar(&limit, "limit", 20, "how many results to list")
	return c
}

// checkTable prints check results; long adds where and when.
func checkTable(w io.Writer, recs []runtime.CheckRecord, long bool) error {
	header := []string{"CHECK", "ASSET", "PARTITION", "RESULT", "SEVERITY", "BLOCKING", "DESCRIPTION", "METADATA"}
	if long {
		header = append(header, "MATERIALIZATION", "RUN", "AT")
	}
	rows := make([][]string, len(recs))
	for i, r := range recs {
		blocking := "no"
		if r.Blocking {
			blocking = "yes"
		}
		rows[i] = []string{r.Check, r.Asset, orDash(string(r.Partition)), checkOutcome(r), string(r.Severity), blocking,
			oneLine(r.Description), metadataText(r.Metadata)}
		if long {
			rows[i] = append(rows[i], r.Materialization, orDash(r.Run), timestamp(r.At))
		}
	}
	return table(w, header, rows)
}

func checkOutcome(r runtime.CheckRecord) string {
	if r.Passed {
		return "passed"
	}
	return "failed"
}

func metadataText(m map[string]any) string {
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+attrText(m[k]))
	}
	return orDash(strings.Join(parts, " "))
}

// showChecks prints, for show, the check results of materialization mat.
func showChecks(ctx context.Context, w io.Writer, eng *runtime.Engine, mat string) error {
	recs, err := eng.MaterializationChecks(ctx, mat)
	if err != nil {
		return err
	}
	for _, r := range recs {
		line := checkOutcome(r)
		if !r.Passed {
			line += " (" + string(r.Severity) + ")"
		}
		if r.Description != "" {
			line += ": " + oneLine(r.Description)
		}
		if len(r.Metadata) > 0 {
			line += " [" + metadataText(r.Metadata) + "]"
		}
		fmt.Fprintf(w, "check %s:\t%s\n", r.Check, line)
	}
	return nil
}
