package runtime

import (
	"fmt"
	"slices"

	"github.com/flowstone-go/flowstone"
)

// node is one asset at one partition key within a run.
type node struct {
	a   *AssetDef
	key flowstone.Partition
}

// edge says down reads (or waits for) up.
type edge struct {
	down, up node
	// required: down cannot run unless up succeeds (all but Outcome).
	required bool
}

// runPlan is the set of nodes a run materializes, and their edges.
type runPlan struct {
	nodes []node // topological order; keys sorted within an asset
	edges []edge
}

func nodeID(a string, key flowstone.Partition) string { return a + "\x00" + string(key) }

// planRun maps the targets' partition key through every dependency of the
// closure (assets in topological order): the same set maps key to key; an
// unpartitioned upstream is read at ""; a coarser time-partitioned asset
// over a finer one (map[Partition]T) depends on each covered key; an
// unpartitioned asset over a static set depends on all its keys. A
// map[Partition]T over keys that cannot be listed (a dynamic set, an
// open-ended time set read by an unpartitioned asset) reads what is
// materialized and runs none of it.
func planRun(p *Pipeline, closure []*AssetDef, targets []string, key flowstone.Partition) (*runPlan, error) {
	need := map[string][]flowstone.Partition{}
	add := func(a string, k flowstone.Partition) bool {
		if slices.Contains(need[a], k) {
			return false
		}
		need[a] = append(need[a], k)
		return true
	}
	if len(targets) == 0 {
		for _, a := range closure {
			targets = append(targets, a.Key)
		}
	}
	var partitioned *AssetDef
	for _, t := range targets {
		a := p.Asset(t)
		k := flowstone.Partition("")
		if a.Partitions != nil {
			if key == "" {
				return nil, fmt.Errorf("%w: asset %s is partitioned (%s): give a partition key, e.g. %q",
					flowstone.ErrInvalidPartition, a.Key, a.Partitions.Kind(), a.Partitions.Example())
			}
			k, partitioned = key, a
		}
		add(a.Key, k)
	}
	if partitioned == nil && key != "" {
		return nil, fmt.Errorf("%w %q: the targets of this run are unpartitioned", flowstone.ErrInvalidPartition, key)
	}
	plan := &runPlan{}
	edgeAt := map[[2]string]int{}
	for i := len(closure) - 1; i >= 0; i-- {
		a := closure[i]
		for _, k := range need[a.Key] {
			for _, d := range a.Deps {
				if d.Kind == DepPrevious {
					continue
				}
				up := p.Asset(d.Asset)
				keys, err := mapKeys(a, k, d, up)
				if err != nil {
					return nil, err
				}
				for _, uk := range keys {
					add(up.Key, uk)
					id := [2]string{nodeID(a.Key, k), nodeID(up.Key, uk)}
					if j, ok := edgeAt[id]; ok {
						plan.edges[j].required = plan.edges[j].required || !d.Kind.Tolerant()
						continue
					}
					edgeAt[id] = len(plan.edges)
					plan.edges = append(plan.edges, edge{down: node{a, k}, up: node{up, uk}, required: !d.Kind.Tolerant()})
				}
			}
		}
	}
	for _, a := range closure {
		keys := need[a.Key]
		slices.Sort(keys)
		for _, k := range keys {
			if a.Partitions != nil {
				if err := a.Partitions.Validate(k); err != nil {
					return nil, fmt.Errorf("asset %s: %w", a.Key, err)
				}
			}
			plan.nodes = append(plan.nodes, node{a, k})
		}
	}
	return plan, nil
}

// mapKeys returns the keys of up that down at key depends on through d.
func mapKeys(down *AssetDef, key flowstone.Partition, d Dep, up *AssetDef) ([]flowstone.Partition, error) {
	if up.Partitions == nil {
		return []flowstone.Partition{""}, nil
	}
	if d.Kind == DepPartitions {
		dt, dok := down.Partitions.(flowstone.TimeWindowSet)
		ut, uok := up.Partitions.(flowstone.TimeWindowSet)
		switch {
		case dok && uok:
			start, end, err := dt.Window(key)
			if err != nil {
				return nil, fmt.Errorf("asset %s: %w", down.Key, err)
			}
			var keys []flowstone.Partition
			for k, ok := ut.Key(start), true; ok; k, ok = ut.Next(k) {
				s, _, err := ut.Window(k)
				if err == nil && !s.Before(end) {
					break
				}
				if err == nil {
					keys = append(keys, k)
				}
				if len(keys) > 100_000 {
					return nil, fmt.Errorf("asset %s partition %q covers too many partitions of %s", down.Key, key, up.Key)
				}
			}
			return keys, nil
		case down.Partitions == nil:
			if s, ok := up.Partitions.(interface{ Keys() []flowstone.Partition }); ok {
				return s.Keys(), nil
			}
		}
		return nil, nil // read what is materialized
	}
	if down.Partitions == nil {
		return nil, fmt.Errorf("asset %s is unpartitioned but reads partitioned %s as a single value", down.Key, up.Key)
	}
	return []flowstone.Partition{key}, nil
}
