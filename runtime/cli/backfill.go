package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

// backfillPollEvery is how often a followed backfill is read from the
// database; a progress line is printed at most every progressEvery.
const backfillPollEvery = 300 * time.Millisecond

func (s *session) backfillCommand() *cobra.Command {
	var from, to, partitions, config string
	var maxConcurrent int
	var force, detach bool
	c := &cobra.Command{
		Use:   "backfill [SELECTION...] --from KEY --to KEY | --partitions K1,K2,...",
		Short: "Materialize assets over many partitions and follow the progress",
		Long: `Backfill materializes the selected assets (every asset when none is) with
their upstream over a range of partitions (--from and --to, both included)
or a list (--partitions). At most --max-concurrent partitions run at once;
partitions already up to date are reused unless --force.

It works in this process and prints the progress at most once a second,
then exits 0 when every partition succeeded, 1 otherwise. The backfill is
recorded in the database: with --detach, or after an interrupt, worker
processes carry it on, and 'backfill status ID' shows it.`,
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			req := runtime.BackfillRequest{MaxConcurrent: maxConcurrent, Force: force,
				From: flowstone.Partition(from), To: flowstone.Partition(to)}
			switch {
			case partitions != "" && (from != "" || to != ""):
				return usageErr("give --partitions or --from and --to, not both")
			case partitions != "":
				keys, from, to, err := partitionList(partitions)
				if err != nil {
					return err
				}
				req.Partitions, req.From, req.To = keys, from, to
			case from == "" || to == "":
				return usageErr("backfill needs --from and --to (both included), or --partitions")
			}
			if maxConcurrent < 0 {
				return usageErr("--max-concurrent %d: want a positive number", maxConcurrent)
			}
			bs, p, err := s.bindings(ctx)
			if err != nil {
				return err
			}
			var assets []*runtime.AssetDef
			if req.Select, assets, err = selectAssets(p, args); err != nil {
				return err
			}
			if req.Config, err = s.runConfig(p, assets, config); err != nil {
				return err
			}
			eng, err := s.open(ctx, bs, !detach)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)

			id, err := eng.Backfill(ctx, p, req)
			if err != nil {
				if badBackfill(err) {
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			b, err := eng.BackfillStatus(ctx, id)
			if err != nil {
				return err
			}
			conc := maxConcurrent
			if conc == 0 {
				conc = 4
			}
			fmt.Fprintf(s.stdout, "backfill %s started: pipeline %s, %d partition%s %s, at most %d at once\n",
				id, p.Name(), b.Total, plural(b.Total == 1, "", "s"), keySpan(b.Order), conc)
			if detach {
				fmt.Fprintf(s.stdout, "detached: workers (%s worker) do the work; follow it with: %s backfill status --follow %s\n", s.app.Name, s.app.Name, id)
				return nil
			}
			return s.followBackfill(ctx, eng, id)
		}),
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "first partition key of the range")
	f.StringVar(&to, "to", "", "last partition key of the range (included)")
	f.StringVar(&partitions, "partitions", "", "comma-separated partition keys, or a range written FROM,...,TO")
	f.IntVar(&maxConcurrent, "max-concurrent", 4, "how many partitions run at once")
	f.StringVar(&config, "config", "", "run config as JSON, or @FILE to read it from a file; unknown fields are an error")
	f.BoolVar(&force, "force", false, "recompute partitions that could be reused")
	f.BoolVar(&detach, "detach", false, "record the backfill and exit; worker processes do the work")
	c.AddCommand(s.backfillStatusCommand(), s.backfillCancelCommand())
	return c
}

// partitionList reads --partitions: keys separated by commas, or a range
// written FROM,...,TO (both included), as the docs write it.
func partitionList(arg string) (keys []flowstone.Partition, from, to flowstone.Partition, err error) {
	var parts []string
	for _, k := range strings.Split(arg, ",") {
		if k = strings.TrimSpace(k); k != "" {
			parts = append(parts, k)
		}
	}
	if !slices.Contains(parts, "...") && !slices.Contains(parts, "…") {
		for _, k := range parts {
			keys = append(keys, flowstone.Partition(k))
		}
		return keys, "", "", nil
	}
	if len(parts) != 3 || parts[0] == "..." || parts[2] == "..." || parts[0] == "…" || parts[2] == "…" {
		return nil, "", "", usageErr("--partitions %s: write a range as FROM,...,TO, or list the keys", arg)
	}
	return nil, flowstone.Partition(parts[0]), flowstone.Partition(parts[2]), nil
}

func (s *session) backfillStatusCommand() *cobra.Command {
	var watch bool
	c := &cobra.Command{
		Use:   "status BACKFILL_ID",
		Short: "Show a backfill's progress and its partitions",
		Long: `Status shows a backfill's progress and its partitions, consecutive
partitions with the same status on one line. With --follow it follows the
backfill to its end like backfill itself, and exits 0 when every partition
succeeded, 1 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			eng, _, err := s.openAllRead(ctx)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			b, err := eng.BackfillStatus(ctx, args[0])
			if err != nil {
				return err
			}
			if watch {
				fmt.Fprintf(s.stdout, "%s\n", progressOf(b))
				return s.followBackfill(ctx, eng, b.ID)
			}
			return backfillReport(s.stdout, b)
		}),
	}
	c.Flags().BoolVar(&watch, "follow", false, "follow the backfill until it ends")
	return c
}

func (s *session) backfillCancelCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel BACKFILL_ID",
		Short: "Cancel a backfill: its pending partitions, and the runs of running ones",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			eng, _, err := s.openAll(ctx, false)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			before, err := eng.BackfillStatus(ctx, args[0])
			if err != nil {
				return err
			}
			if before.Status != "running" {
				fmt.Fprintf(s.stdout, "backfill %s had already finished: %s\n", before.ID, before.Status)
				return nil
			}
			if err := eng.CancelBackfill(ctx, before.ID); err != nil {
				return err
			}
			b, err := eng.BackfillStatus(ctx, before.ID)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.stdout, "backfill %s %s: %s\n", b.ID, b.Status, backfillCounts(b))
			return nil
		}),
	}
}

// badBackfill reports whether Backfill refused the request itself (an
// unknown target, a bad key or range, config), which is the user's to fix.
func badBackfill(err error) bool {
	return isBadRequest(err) || errors.Is(err, runtime.ErrBadBackfill)
}

// followBackfill prints a backfill's progress until it ends, at most a line
// a second and only when it moved, then the partitions that did not
// succeed; a backfill that did not succeed is exit status 1.
func (s *session) followBackfill(ctx context.Context, eng *runtime.Engine, id string) error {
	tick := time.NewTicker(backfillPollEvery)
	defer tick.Stop()
	var shown string
	var shownAt time.Time
	for {
		var b runtime.BackfillStatus
		err := eng.RetryUnreachable(ctx, func(ctx context.Context) (err error) {
			b, err = eng.BackfillStatus(ctx, id)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return s.stoppedFollowing(id)
			}
			return err
		}
		if b.Status != "running" {
			fmt.Fprintf(s.stdout, "backfill %s %s in %s: %s\n", b.ID, b.Status, roundDuration(b.FinishedAt.Sub(b.CreatedAt)), backfillCounts(b))
			if err := unsucceeded(s.stdout, b); err != nil {
				return err
			}
			if b.Status != "succeeded" {
				return &exitError{code: ExitFailure, err: fmt.Errorf("backfill %s %s", b.ID, b.Status)}
			}
			return nil
		}
		if line := progressOf(b); line != shown && time.Since(shownAt) >= progressEvery {
			fmt.Fprintf(s.stdout, "  %s  %s\n", time.Now().Format("15:04:05.000"), line)
			shown, shownAt = line, time.Now()
		}
		select {
		case <-ctx.Done():
			return s.stoppedFollowing(id)
		case <-tick.C:
		}
	}
}

func (s *session) stoppedFollowing(id string) error {
	fmt.Fprintf(s.stderr, "%s: stopped following backfill %s; it goes on wherever workers run (%s worker); cancel it with: %s backfill cancel %s\n",
		s.app.Name, id, s.app.Name, s.app.Name, id)
	return &exitError{code: ExitInterrupted}
}

// progressOf is a backfill's progress line: "backfill bf_… 37/120 done,
// 4 running, 1 failed". Done counts every finished partition.
func progressOf(b runtime.BackfillStatus) string {
	done := b.Succeeded + b.Failed + b.Cancelled
	line := fmt.Sprintf("backfill %s %s/%s done, %s running, %s failed", b.ID, thousands(done), thousands(b.Total), thousands(b.Running), thousands(b.Failed))
	if b.Cancelled > 0 {
		line += fmt.Sprintf(", %s cancelled", thousands(b.Cancelled))
	}
	return line
}

// backfillCounts tallies partitions by status: "5 succeeded, 2 failed".
func backfillCounts(b runtime.BackfillStatus) string {
	var parts []string
	for _, c := range []struct {
		n    int
		name string
	}{{b.Succeeded, "succeeded"}, {b.Failed, "failed"}, {b.Cancelled, "cancelled"}, {b.Running, "running"}, {b.Pending, "pending"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", thousands(c.n), c.name))
		}
	}
	if len(parts) == 0 {
		return "no partitions"
	}
	return strings.Join(parts, ", ")
}

// unsucceeded lists the partitions of a finished backfill that did not
// succeed, grouped like backfillReport's; nothing when all did.
func unsucceeded(w io.Writer, b runtime.BackfillStatus) error {
	if b.Succeeded == b.Total {
		return nil
	}
	var rows [][]string
	for _, g := range groupKeys(b) {
		if g.status != "succeeded" {
			rows = append(rows, g.row())
		}
	}
	fmt.Fprintln(w)
	return table(w, []string{"PARTITIONS", "COUNT", "STATUS"}, rows)
}

// backfillReport writes a backfill's record and its partitions.
func backfillReport(w io.Writer, b runtime.BackfillStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "backfill:\t%s\n", b.ID)
	fmt.Fprintf(tw, "pipeline:\t%s\n", b.Pipeline)
	fmt.Fprintf(tw, "status:\t%s (%s)\n", b.Status, backfillCounts(b))
	fmt.Fprintf(tw, "progress:\t%s/%s done\n", thousands(b.Succeeded+b.Failed+b.Cancelled), thousands(b.Total))
	fmt.Fprintf(tw, "started:\t%s\n", timestamp(b.CreatedAt))
	if !b.FinishedAt.IsZero() {
		fmt.Fprintf(tw, "finished:\t%s (%s)\n", timestamp(b.FinishedAt), duration(b.CreatedAt, b.FinishedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, g := range groupKeys(b) {
		rows = append(rows, g.row())
	}
	return table(w, []string{"PARTITIONS", "COUNT", "STATUS"}, rows)
}

// keyGroup is a run of consecutive partitions (in backfill order) with the
// same status.
type keyGroup struct {
	first, last flowstone.Partition
	n           int
	status      string
}

func (g keyGroup) row() []string {
	span := string(g.first)
	if g.n > 1 {
		span += " … " + string(g.last)
	}
	return []string{span, thousands(g.n), g.status}
}

func groupKeys(b runtime.BackfillStatus) []keyGroup {
	var out []keyGroup
	for _, k := range b.Order {
		st := b.Partitions[k]
		if n := len(out); n > 0 && out[n-1].status == st {
			out[n-1].last = k
			out[n-1].n++
			continue
		}
		out = append(out, keyGroup{first: k, last: k, n: 1, status: st})
	}
	return out
}

// keySpan describes a backfill's keys: "2024-01-01 … 2024-01-07", or the
// key itself.
func keySpan(keys []flowstone.Partition) string {
	switch len(keys) {
	case 0:
		return ""
	case 1:
		return string(keys[0])
	}
	return string(keys[0]) + " … " + string(keys[len(keys)-1])
}
