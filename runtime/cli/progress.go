package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/scatter"
)

// scatterProgress returns the progress line of asset a in run runID when
// it is waiting on a scatter barrier, e.g. "waiting: 1,250/3,000 items
// done, 12 failed"; ok is false for any other asset. A waiting asset
// without a barrier (a gate, or a scatter not yet started) reports an
// error from ScatterProgress, which only means there is no progress to
// show.
func scatterProgress(ctx context.Context, eng *runtime.Engine, runID, asset string, a runtime.AssetResult) (line string, ok bool) {
	if a.Status != runtime.StatusWaiting {
		return "", false
	}
	p, err := eng.ScatterProgress(ctx, runtime.Ref{RunID: runID, Asset: asset, Partition: a.Partition})
	if err != nil || p.Status != scatter.Running {
		return "", false
	}
	return progressLine(p), true
}

// progressLine describes a running scatter's progress.
func progressLine(p scatter.Progress) string {
	return fmt.Sprintf("waiting: %s/%s items done, %s failed", thousands(p.Done), thousands(p.Total), thousands(p.Failed))
}

// thousands formats n with comma thousands separators: 1,250.
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	out := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		out = append(out, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// runTableWithProgress writes a run's table and, under it, the progress
// of its assets waiting on a scatter. Their waiting reason, a snapshot of
// the same counts, is left out of the ERROR column.
func runTableWithProgress(ctx context.Context, w io.Writer, eng *runtime.Engine, res runtime.RunResult) error {
	var rows [][]string
	assets := make(map[string]runtime.AssetResult, len(res.Assets))
	for _, k := range res.Order {
		a := res.Assets[k]
		if line, ok := scatterProgress(ctx, eng, res.ID, k, a); ok {
			rows = append(rows, []string{k, line})
			a.Error = ""
		}
		assets[k] = a
	}
	res.Assets = assets
	if err := runTable(w, res, true); err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
