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
	p, err := eng.ScatterProgress(ctx, runID, asset)
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

// scatterLines writes, under a run's table, the progress of its assets
// waiting on a scatter.
func scatterLines(ctx context.Context, w io.Writer, eng *runtime.Engine, res runtime.RunResult) error {
	var rows [][]string
	for _, k := range res.Order {
		if line, ok := scatterProgress(ctx, eng, res.ID, k, res.Assets[k]); ok {
			rows = append(rows, []string{k, line})
		}
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
