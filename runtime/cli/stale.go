package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/flowstone-go/flowstone/runtime"
)

// printStale lists, after the assets table, the stale assets among shown
// with their reasons.
func (s *session) printStale(ctx context.Context, eng *runtime.Engine, p *runtime.Pipeline, shown []*runtime.AssetDef) error {
	all, err := eng.Staleness(ctx, p)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, a := range shown {
		listed[a.Key] = true
	}
	first := true
	for _, st := range all {
		if !st.Stale || !listed[st.Asset] {
			continue
		}
		if first {
			fmt.Fprintln(s.stdout)
			first = false
		}
		fmt.Fprintf(s.stdout, "stale %s: %s\n", st.Asset, strings.Join(st.Reasons, "; "))
	}
	return nil
}

// showStale prints, for show, why asset is stale; nothing when it is not.
func showStale(ctx context.Context, w io.Writer, eng *runtime.Engine, p *runtime.Pipeline, asset string) error {
	all, err := eng.Staleness(ctx, p)
	if err != nil {
		return err
	}
	for _, st := range all {
		if st.Asset == asset && st.Stale {
			for _, r := range st.Reasons {
				fmt.Fprintf(w, "stale:\t%s\n", r)
			}
		}
	}
	return nil
}
