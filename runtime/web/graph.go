package web

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
)

type depJSON struct {
	Asset string `json:"asset"`
	Kind  string `json:"kind"`
}

// nodeJSON is one asset of the graph.
type nodeJSON struct {
	Key         string    `json:"key"`
	Kind        string    `json:"kind"`
	Group       string    `json:"group,omitempty"`
	Description string    `json:"description,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	Partitions  string    `json:"partitions,omitempty"`
	Schedule    string    `json:"schedule,omitempty"`
	CodeVersion string    `json:"codeVersion"`
	Deps        []depJSON `json:"deps"`
	// Status is the newest materialization's status, empty when none.
	Status     string     `json:"status"`
	FinishedAt *time.Time `json:"finishedAt"`
	// Stale says why the newest successful materialization is out of
	// date; empty when it is not, or when that cannot be told.
	Stale string `json:"stale,omitempty"`
	// Health counts a partitioned asset's partitions by their newest
	// status ("running" for those a run works on now).
	Health map[string]int `json:"health,omitempty"`
}

type pipelineJSON struct {
	Name   string     `json:"name"`
	Assets []nodeJSON `json:"assets"`
}

func describe(a *runtime.AssetDef) nodeJSON {
	n := nodeJSON{Key: a.Key, Kind: a.Kind, Group: a.Group, Description: a.Description, Tags: a.Tags, Schedule: a.Schedule,
		CodeVersion: a.CodeVersion, Deps: []depJSON{}}
	if a.Partitions != nil {
		n.Partitions = a.Partitions.Kind()
	}
	for _, d := range a.Deps {
		n.Deps = append(n.Deps, depJSON{Asset: d.Asset, Kind: d.Kind.String()})
	}
	return n
}

// graph answers every bound pipeline's assets with their newest status,
// staleness and partitions' health.
func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	out := []pipelineJSON{}
	for _, p := range h.eng.Pipelines() {
		latest, err := h.eng.Latest(ctx, p.Name())
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		pj := pipelineJSON{Name: p.Name()}
		for _, a := range p.Assets() {
			n := describe(a)
			if m, ok := latest[a.Key]; ok {
				n.Status, n.FinishedAt = m.Status, timeJSON(m.FinishedAt)
				n.Stale = staleness(a, m, latest)
			}
			if a.Partitions != nil {
				parts, err := h.partitions(ctx, p.Name(), a.Key)
				if err != nil {
					h.failErr(w, r, err)
					return
				}
				n.Health = map[string]int{}
				for _, ps := range parts {
					n.Health[ps.Status]++
				}
			}
			pj.Assets = append(pj.Assets, n)
		}
		out = append(out, pj)
	}
	h.json(w, out)
}

// staleness says why m, asset a's newest materialization, is out of date:
// the code changed since, or (both unpartitioned) an upstream succeeded
// after it.
func staleness(a *runtime.AssetDef, m runtime.Materialization, latest map[string]runtime.Materialization) string {
	if m.Status != "succeeded" {
		return ""
	}
	if m.CodeVersion != "" && a.CodeVersion != "" && m.CodeVersion != a.CodeVersion {
		return "code changed since it was materialized"
	}
	if a.Partitions != nil {
		return ""
	}
	for _, d := range a.Deps {
		if d.Kind == runtime.DepPrevious {
			continue
		}
		up, ok := latest[d.Asset]
		if ok && up.Status == "succeeded" && up.Partition == "" && up.FinishedAt.After(m.FinishedAt) {
			return "upstream " + d.Asset + " changed since"
		}
	}
	return ""
}

// partitionJSON is one partition of an asset: its newest
// materialization's status, or "running" while a run works on it.
type partitionJSON struct {
	Partition       flowstone.Partition `json:"partition"`
	Status          string              `json:"status"`
	Materialization string              `json:"materialization,omitempty"`
	Run             string              `json:"run,omitempty"`
	FinishedAt      *time.Time          `json:"finishedAt"`
}

// partitions lists asset's partitions that have a materialization or a
// run working on them, by key.
func (h *Handler) partitions(ctx context.Context, pipeline, asset string) ([]partitionJSON, error) {
	parts, err := h.eng.PartitionStatuses(ctx, pipeline, asset)
	if err != nil {
		return nil, err
	}
	out := make([]partitionJSON, len(parts))
	for i, p := range parts {
		pj := partitionJSON{Partition: p.Partition, Status: p.Latest.Status, Materialization: p.Latest.ID, Run: p.Latest.RunID, FinishedAt: timeJSON(p.Latest.FinishedAt)}
		if p.RunningIn != "" {
			pj.Status, pj.Run = "running", p.RunningIn
		}
		out[i] = pj
	}
	return out, nil
}

func sortedPartitions(m map[flowstone.Partition]runtime.AssetResult) []flowstone.Partition {
	return slices.Sorted(maps.Keys(m))
}
