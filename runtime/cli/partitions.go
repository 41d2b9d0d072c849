package cli

import (
	"context"
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

// rangeLimit bounds the keys a --from/--to range lists.
const rangeLimit = 100_000

// The one-character cells of the partitions matrix.
const (
	cellSucceeded = "✓"
	cellFailed    = "✗"
	cellRunning   = "~"
	cellSkipped   = "s"
	cellNone      = "·"
	cellNotInSet  = " "
)

func (s *session) partitionsCommand() *cobra.Command {
	var from, to string
	var last int
	c := &cobra.Command{
		Use:   "partitions SELECTION... [--from KEY --to KEY | --last N]",
		Short: "Show the status of each partition of assets",
		Long: `Partitions shows the status of each partition of the selected assets (names,
or a selection as materialize takes: group:G, +NAME, ...): for one asset a
table of its partitions with the last materialization's status, when it
finished and the run; for several a matrix, one row per partition and one
column per asset.

The partitions listed are a range of the first asset's set (--from and --to,
both included), its newest N keys up to now (--last N), or by default every
partition with a record (and every key of a static or dynamic set).`,
		Args: cobra.MinimumNArgs(1),
		RunE: run(func(c *cobra.Command, assets []string) error {
			ctx := c.Context()
			if (from == "") != (to == "") {
				return usageErr("give both --from and --to")
			}
			if from != "" && last > 0 {
				return usageErr("give --from and --to, or --last, not both")
			}
			if last < 0 {
				return usageErr("--last %d: want a positive number", last)
			}
			bs, p, err := s.readBindings(ctx)
			if err != nil {
				return err
			}
			// Names keep the order given (the first asset's set lists
			// the keys); any other selection is in topological order.
			if slices.ContainsFunc(assets, func(k string) bool { return p.Asset(k) == nil }) {
				if assets, err = p.Select(strings.Join(assets, " ")); err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
			}
			defs := make([]*runtime.AssetDef, len(assets))
			for i, k := range assets {
				defs[i] = p.Asset(k)
			}
			eng, err := s.openRead(ctx, bs)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			st, err := readPartitionStates(ctx, eng, p, assets)
			if err != nil {
				return err
			}
			keys, err := listKeys(ctx, eng, p, defs, st, flowstone.Partition(from), flowstone.Partition(to), last, time.Now())
			if err != nil {
				return err
			}
			if len(defs) == 1 {
				return partitionTable(s.stdout, defs[0], keys, st)
			}
			return partitionMatrix(s.stdout, defs, keys, st)
		}),
	}
	f := c.Flags()
	f.StringVar(&from, "from", "", "first partition key")
	f.StringVar(&to, "to", "", "last partition key (included)")
	f.IntVar(&last, "last", 0, "the newest N partitions of the first asset's set, up to now")
	return c
}

// states maps asset, then partition key, to its state.
type states map[string]map[flowstone.Partition]runtime.PartitionStatus

// readPartitionStates reads the newest materialization of each partition
// of the assets, and the runs working on them now.
func readPartitionStates(ctx context.Context, eng *runtime.Engine, p *runtime.Pipeline, assets []string) (states, error) {
	st := states{}
	for _, a := range assets {
		ps, err := eng.PartitionStatuses(ctx, p.Name(), a)
		if err != nil {
			return nil, err
		}
		byKey := make(map[flowstone.Partition]runtime.PartitionStatus, len(ps))
		for _, s := range ps {
			byKey[s.Partition] = s
		}
		st[a] = byKey
	}
	return st, nil
}

// listKeys chooses the rows: a range or the newest N keys of the first
// asset's set, or every key with a record (with a static or dynamic set's
// keys).
func listKeys(ctx context.Context, eng *runtime.Engine, p *runtime.Pipeline, defs []*runtime.AssetDef, st states, from, to flowstone.Partition, last int, now time.Time) ([]flowstone.Partition, error) {
	set := defs[0].Partitions
	if set == nil {
		if from != "" || last > 0 {
			return nil, usageErr("asset %s is unpartitioned: --from, --to and --last do not apply", defs[0].Key)
		}
	}
	if from != "" {
		for _, k := range []flowstone.Partition{from, to} {
			if err := set.Validate(k); err != nil {
				return nil, &exitError{code: ExitUsage, err: fmt.Errorf("asset %s: %w", defs[0].Key, err)}
			}
		}
		switch s := set.(type) {
		case flowstone.TimeWindowSet:
			var keys []flowstone.Partition
			for k, ok := from, true; ok; k, ok = s.Next(k) {
				keys = append(keys, k)
				if k == to {
					return keys, nil
				}
				if len(keys) > rangeLimit {
					break
				}
			}
			return nil, usageErr("--to %s does not come after --from %s", to, from)
		case interface{ Keys() []flowstone.Partition }:
			all := s.Keys()
			i, j := slices.Index(all, from), slices.Index(all, to)
			if j < i {
				return nil, usageErr("--to %s does not come after --from %s in the set", to, from)
			}
			return all[i : j+1], nil
		}
		return nil, usageErr("a %s set has no ranges: leave --from and --to out", set.Kind())
	}
	var keys []flowstone.Partition
	seen := map[flowstone.Partition]bool{}
	add := func(k flowstone.Partition) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	switch s := set.(type) {
	case nil:
		add("")
	case flowstone.TimeWindowSet:
		if last > 0 {
			k, ok := s.Last(now)
			if !ok { // before the start
				break
			}
			for range last {
				keys = append(keys, k)
				var ok bool
				if k, ok = s.Previous(k); !ok {
					break
				}
			}
			slices.Reverse(keys)
			return keys, nil
		}
	case interface{ Keys() []flowstone.Partition }:
		for _, k := range s.Keys() {
			add(k)
		}
	case *flowstone.DynamicSet:
		ks, err := eng.DynamicPartitions(ctx, p, s.Name())
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			add(k)
		}
	}
	var recorded []flowstone.Partition
	for _, d := range defs {
		for k := range st[d.Key] {
			if !seen[k] {
				recorded = append(recorded, k)
				seen[k] = true
			}
		}
	}
	slices.Sort(recorded)
	keys = append(keys, recorded...)
	if last > 0 && len(keys) > last {
		keys = keys[len(keys)-last:]
	}
	return keys, nil
}

// statusOf is a partition's status word: the newest materialization's, or
// running while a run works on it, or "" when it has no record.
func statusOf(ps runtime.PartitionStatus) string {
	switch {
	case ps.RunningIn != "":
		return "running"
	case ps.Latest.ID != "":
		return ps.Latest.Status
	}
	return ""
}

// inSet reports whether key is one of the asset's partitions.
func inSet(a *runtime.AssetDef, key flowstone.Partition) bool {
	if a.Partitions == nil {
		return key == ""
	}
	return a.Partitions.Validate(key) == nil
}

// partitionTable writes one asset's partitions, then a tally.
func partitionTable(w io.Writer, a *runtime.AssetDef, keys []flowstone.Partition, st states) error {
	var rows [][]string
	counts := map[string]int{}
	for _, k := range keys {
		ps := st[a.Key][k]
		status := statusOf(ps)
		counts[status]++
		if status == "" {
			status = "none"
		}
		run := ps.Latest.RunID
		if ps.RunningIn != "" {
			run = ps.RunningIn
		}
		rows = append(rows, []string{string(k), status, timestamp(ps.Latest.FinishedAt), run, oneLine(ps.Latest.Error)})
	}
	if err := table(w, []string{"PARTITION", "STATUS", "MATERIALIZED", "RUN", "ERROR"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s: %s\n", a.Key, tally(len(keys), counts))
	return nil
}

// tally is "7 partitions: 5 succeeded, 1 failed, 1 none".
func tally(n int, counts map[string]int) string {
	var parts []string
	for _, st := range []string{"succeeded", "skipped", "failed", "running", ""} {
		if c := counts[st]; c > 0 {
			if st == "" {
				st = "none"
			}
			parts = append(parts, fmt.Sprintf("%s %s", thousands(c), st))
		}
	}
	line := fmt.Sprintf("%s partition%s", thousands(n), plural(n == 1, "", "s"))
	if len(parts) > 0 {
		line += ": " + strings.Join(parts, ", ")
	}
	return line
}

// cell is a partition's one-character status in the matrix.
func cell(a *runtime.AssetDef, k flowstone.Partition, ps runtime.PartitionStatus) string {
	if !inSet(a, k) {
		return cellNotInSet
	}
	switch statusOf(ps) {
	case "running":
		return cellRunning
	case "succeeded":
		return cellSucceeded
	case "failed":
		return cellFailed
	case "skipped":
		return cellSkipped
	}
	return cellNone
}

// partitionMatrix writes a row per partition and a column per asset, then
// the legend.
func partitionMatrix(w io.Writer, defs []*runtime.AssetDef, keys []flowstone.Partition, st states) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"PARTITION"}
	for _, d := range defs {
		header = append(header, d.Key)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, k := range keys {
		row := []string{string(k)}
		if k == "" {
			row[0] = "(unpartitioned)"
		}
		for _, d := range defs {
			row = append(row, cell(d, k, st[d.Key][k]))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%s succeeded  %s failed  %s running  %s skipped  %s none  (blank: not a partition of the asset)\n",
		cellSucceeded, cellFailed, cellRunning, cellSkipped, cellNone)
	return nil
}
