package web

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
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
	// Stale says why the newest successful materializations are out of
	// date (Engine.Staleness's reasons, joined); empty when they are not.
	Stale string `json:"stale,omitempty"`
	// StaleReasons are those reasons one by one, StalePartitions the
	// stale partitions of a partitioned asset.
	StaleReasons    []string              `json:"staleReasons,omitempty"`
	StalePartitions []flowstone.Partition `json:"stalePartitions,omitempty"`
	// Freshness is the asset's state against its fresh= bound; nil
	// without one.
	Freshness *freshnessJSON `json:"freshness,omitempty"`
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

// freshnessJSON is an asset's state against its freshness bound.
type freshnessJSON struct {
	// Bound is fresh= as text ("24h0m0s").
	Bound string `json:"bound"`
	// Partition is the partition judged (a time-partitioned asset's
	// newest complete one).
	Partition    flowstone.Partition `json:"partition,omitempty"`
	Materialized *time.Time          `json:"materializedAt"`
	// Age is how long ago the judged data was materialized, as text;
	// empty when never.
	Age     string     `json:"age,omitempty"`
	Due     *time.Time `json:"due"`
	Overdue bool       `json:"overdue"`
	Reason  string     `json:"reason,omitempty"`
}

func toFreshness(f runtime.Freshness, now time.Time) *freshnessJSON {
	out := &freshnessJSON{Bound: shortDuration(f.Fresh), Partition: f.Partition, Materialized: timeJSON(f.Materialized), Due: timeJSON(f.Due),
		Overdue: f.Overdue, Reason: f.Reason}
	if !f.Materialized.IsZero() {
		out.Age = now.Sub(f.Materialized).Round(time.Second).String()
	}
	return out
}

// shortDuration words d without its zero tail: 24h, 1h30m, 90s, 1ms.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// health is what the engine says of a pipeline's assets beyond their
// newest status: staleness with reasons and freshness against fresh=.
type health struct {
	stale map[string]runtime.Staleness
	fresh map[string]*freshnessJSON
}

// pipelineHealth reads p's staleness and freshness at now.
func (h *Handler) pipelineHealth(ctx context.Context, p *runtime.Pipeline, now time.Time) (health, error) {
	out := health{stale: map[string]runtime.Staleness{}, fresh: map[string]*freshnessJSON{}}
	ss, err := h.eng.Staleness(ctx, p)
	if err != nil {
		return out, err
	}
	for _, s := range ss {
		out.stale[s.Asset] = s
	}
	fs, err := h.eng.Freshness(ctx, p, now)
	if err != nil {
		return out, err
	}
	for _, f := range fs {
		out.fresh[f.Asset] = toFreshness(f, now)
	}
	return out, nil
}

// mark sets n's staleness and freshness from hl.
func (hl health) mark(n *nodeJSON) {
	if s := hl.stale[n.Key]; s.Stale {
		n.Stale, n.StaleReasons, n.StalePartitions = strings.Join(s.Reasons, "; "), s.Reasons, s.Partitions
	}
	n.Freshness = hl.fresh[n.Key]
}

// graph answers every bound pipeline's assets with their newest status,
// staleness, freshness and partitions' health.
func (h *Handler) graph(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := time.Now()
	out := []pipelineJSON{}
	for _, p := range h.eng.Pipelines() {
		latest, err := h.eng.Latest(ctx, p.Name())
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		hl, err := h.pipelineHealth(ctx, p, now)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		var partitioned []string
		for _, a := range p.Assets() {
			if a.Partitions != nil {
				partitioned = append(partitioned, a.Key)
			}
		}
		counts, err := h.eng.PartitionHealth(ctx, p.Name(), partitioned)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		pj := pipelineJSON{Name: p.Name()}
		for _, a := range p.Assets() {
			n := describe(a)
			if m, ok := latest[a.Key]; ok {
				n.Status, n.FinishedAt = m.Status, timeJSON(m.FinishedAt)
			}
			hl.mark(&n)
			if a.Partitions != nil {
				n.Health = counts[a.Key]
			}
			pj.Assets = append(pj.Assets, n)
		}
		out = append(out, pj)
	}
	h.json(w, out)
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
