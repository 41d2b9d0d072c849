package runtime

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
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
// materializations replaced since, or downstream of a stale asset. One
// statement answers every asset (per 25 of them); its cost follows the
// partitions and the inputs of their newest materializations, not the
// length of their history.
func (e *Engine) Staleness(ctx context.Context, p *Pipeline) ([]Staleness, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil pipeline", ErrUnknownPipeline)
	}
	asked := make([]store.CodeVersion, len(p.assets))
	for i, a := range p.assets {
		asked[i] = store.CodeVersion{Asset: a.Key, CodeVersion: a.CodeVersion}
	}
	facts, err := e.st.Staleness(ctx, e.be.pool(), e.dialect == "postgres", p.name, asked)
	if err != nil {
		return nil, fmt.Errorf("staleness of %s: %w", p.name, err)
	}
	old := map[string]map[string]bool{}   // asset -> code versions
	parts := map[string]map[string]bool{} // asset -> stale partitions
	mark := func(m map[string]map[string]bool, asset, key string) {
		if m[asset] == nil {
			m[asset] = map[string]bool{}
		}
		m[asset][key] = true
	}
	for _, v := range facts.Old {
		mark(old, v.Asset, v.CodeVersion)
		mark(parts, v.Asset, v.Partition)
	}
	newer := map[string]map[string]map[string]bool{} // asset -> upstream -> upstream partitions
	for _, n := range facts.Newer {
		if newer[n.Asset] == nil {
			newer[n.Asset] = map[string]map[string]bool{}
		}
		mark(newer[n.Asset], n.Upstream, n.UpstreamPartition)
		mark(parts, n.Asset, n.Partition)
	}
	stale := map[string]bool{}
	out := make([]Staleness, 0, len(p.assets))
	for _, a := range p.assets {
		s := Staleness{Asset: a.Key, Materialized: facts.Materialized[a.Key]}
		if !s.Materialized {
			out = append(out, s)
			continue
		}
		if len(old[a.Key]) > 0 {
			s.Reasons = append(s.Reasons, fmt.Sprintf("code version changed (%s → %s)", strings.Join(sortedKeys(old[a.Key]), ", "), a.CodeVersion))
		}
		byUp := newer[a.Key]
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
			for _, k := range sortedKeys(parts[a.Key]) {
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
