package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// Staleness says whether an asset's stored values still follow from its
// code and its upstreams.
type Staleness struct {
	Asset string
	// Materialized is false for an asset never materialized successfully;
	// such an asset is missing rather than stale.
	Materialized bool
	Stale        bool
	// Reasons explain Stale, one line each: "code version changed
	// (0fdd77… → a0ea51…)", "upstream events has newer materializations
	// (2024-01-01T03, …)", "upstream daily_counts is stale".
	Reasons []string
	// Partitions are the stale partitions of a partitioned asset.
	Partitions []flowstone.Partition
}

// Staleness reports, for each asset of p in topological order, whether its
// newest successful materializations (one per partition) are stale: made
// by another code version than the pipeline's, or from upstream
// materializations replaced since, or downstream of a stale asset.
func (e *Engine) Staleness(ctx context.Context, p *Pipeline) ([]Staleness, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil pipeline", ErrUnknownPipeline)
	}
	q := e.be.pool()
	stale := map[string]bool{}
	out := make([]Staleness, 0, len(p.assets))
	for _, a := range p.assets {
		s := Staleness{Asset: a.Key}
		versions, err := e.st.NewestVersions(ctx, q, p.name, a.Key)
		if err != nil {
			return nil, fmt.Errorf("staleness of %s: %w", a.Key, err)
		}
		s.Materialized = len(versions) > 0
		if !s.Materialized {
			out = append(out, s)
			continue
		}
		parts := map[string]bool{}
		old := map[string]bool{}
		for _, v := range versions {
			if v.CodeVersion != a.CodeVersion {
				old[v.CodeVersion] = true
				parts[v.Partition] = true
			}
		}
		if len(old) > 0 {
			s.Reasons = append(s.Reasons, fmt.Sprintf("code version changed (%s → %s)", strings.Join(sortedKeys(old), ", "), a.CodeVersion))
		}
		newer, err := e.st.NewerInputs(ctx, q, p.name, a.Key)
		if err != nil {
			return nil, fmt.Errorf("staleness of %s: %w", a.Key, err)
		}
		byUp := map[string]map[string]bool{}
		for _, n := range newer {
			if byUp[n.Upstream] == nil {
				byUp[n.Upstream] = map[string]bool{}
			}
			byUp[n.Upstream][n.UpstreamPartition] = true
			parts[n.Partition] = true
		}
		for _, up := range sortedKeys(byUp) {
			r := "upstream " + up + " has a newer materialization"
			if ks := sortedKeys(byUp[up]); len(ks) > 1 || ks[0] != "" {
				r += " (" + abbreviate(ks, 3) + ")"
			}
			s.Reasons = append(s.Reasons, r)
		}
		for _, d := range a.Deps {
			if d.Kind != DepPrevious && stale[d.Asset] {
				s.Reasons = append(s.Reasons, "upstream "+d.Asset+" is stale")
			}
		}
		s.Stale = len(s.Reasons) > 0
		stale[a.Key] = s.Stale
		if a.Partitions != nil {
			for _, k := range sortedKeys(parts) {
				s.Partitions = append(s.Partitions, flowstone.Partition(k))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// abbreviate joins the first n of ks and says how many more there are.
func abbreviate(ks []string, n int) string {
	if len(ks) <= n {
		return strings.Join(ks, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(ks[:n], ", "), len(ks)-n)
}
