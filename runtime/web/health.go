package web

import (
	"net/http"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
)

// checkJSON is one check's recorded result about a materialization.
type checkJSON struct {
	Pipeline        string              `json:"pipeline"`
	Check           string              `json:"check"`
	Asset           string              `json:"asset"`
	Partition       flowstone.Partition `json:"partition"`
	Materialization string              `json:"materialization"`
	Run             string              `json:"run,omitempty"`
	Passed          bool                `json:"passed"`
	Severity        flowstone.Severity  `json:"severity"`
	Blocking        bool                `json:"blocking"`
	// Blocks is set for a failed blocking check of severity error: its
	// materialization is failed for its dependents.
	Blocks      bool           `json:"blocks"`
	Description string         `json:"description,omitempty"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	At          *time.Time     `json:"at"`
}

func toCheck(r runtime.CheckRecord) checkJSON {
	return checkJSON{Pipeline: r.Pipeline, Check: r.Check, Asset: r.Asset, Partition: r.Partition, Materialization: r.Materialization, Run: r.Run,
		Passed: r.Passed, Severity: r.Severity, Blocking: r.Blocking, Blocks: r.Blocks(), Description: r.Description,
		Metadata: r.Metadata, At: timeJSON(r.At)}
}

// checkDefJSON is a check declared on an asset.
type checkDefJSON struct {
	Name        string             `json:"name"`
	Description string             `json:"description,omitempty"`
	Blocking    bool               `json:"blocking"`
	Severity    flowstone.Severity `json:"severity"`
}

func checkDefs(p *runtime.Pipeline, asset string) []checkDefJSON {
	out := []checkDefJSON{}
	for _, c := range p.Checks(asset) {
		out = append(out, checkDefJSON{Name: c.Name, Description: c.Description, Blocking: c.Blocking, Severity: c.Severity})
	}
	return out
}

// assetHealthJSON is one asset that needs attention.
type assetHealthJSON struct {
	Pipeline string `json:"pipeline"`
	Asset    string `json:"asset"`
	// Freshness is set for an asset with fresh=.
	Freshness *freshnessJSON `json:"freshness,omitempty"`
	// StaleReasons and StalePartitions are set for a stale asset.
	StaleReasons    []string              `json:"staleReasons,omitempty"`
	StalePartitions []flowstone.Partition `json:"stalePartitions,omitempty"`
}

// healthJSON is the health view: every asset with a freshness bound
// (overdue ones first), the stale assets with their reasons, and the
// newest failed checks.
type healthJSON struct {
	Freshness    []assetHealthJSON `json:"freshness"`
	Stale        []assetHealthJSON `json:"stale"`
	FailedChecks []checkJSON       `json:"failedChecks"`
	Pipelines    []string          `json:"pipelines"`
}

// failedChecksShown caps the failed checks the health view lists per
// asset.
const failedChecksShown = 20

// health answers the health view of every bound pipeline (or the query's
// pipeline).
func (h *Handler) health(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := time.Now()
	out := healthJSON{Freshness: []assetHealthJSON{}, Stale: []assetHealthJSON{}, FailedChecks: []checkJSON{}, Pipelines: []string{}}
	var overdue, fresh []assetHealthJSON
	for _, p := range h.eng.Pipelines() {
		if want := r.URL.Query().Get("pipeline"); want != "" && want != p.Name() {
			continue
		}
		out.Pipelines = append(out.Pipelines, p.Name())
		hl, err := h.pipelineHealth(ctx, p, now)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		var checked []string
		for _, a := range p.Assets() {
			if f := hl.fresh[a.Key]; f != nil {
				ah := assetHealthJSON{Pipeline: p.Name(), Asset: a.Key, Freshness: f}
				if f.Overdue {
					overdue = append(overdue, ah)
				} else {
					fresh = append(fresh, ah)
				}
			}
			if s := hl.stale[a.Key]; s.Stale {
				out.Stale = append(out.Stale, assetHealthJSON{Pipeline: p.Name(), Asset: a.Key, StaleReasons: s.Reasons, StalePartitions: s.Partitions})
			}
			if len(p.Checks(a.Key)) > 0 {
				checked = append(checked, a.Key)
			}
		}
		// The failed among each asset's newest results, every asset's in
		// one statement.
		rs, err := h.eng.NewestCheckResults(ctx, p.Name(), checked, failedChecksShown*4)
		if err != nil {
			h.failErr(w, r, err)
			return
		}
		shown := map[string]int{}
		for _, c := range rs {
			if !c.Passed && shown[c.Asset] < failedChecksShown {
				out.FailedChecks = append(out.FailedChecks, toCheck(c))
				shown[c.Asset]++
			}
		}
	}
	out.Freshness = append(append(out.Freshness, overdue...), fresh...)
	h.json(w, out)
}
