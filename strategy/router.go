package strategy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// RouteStatePrefix prefixes the name under which a router's Decision is
// stored for its run and partition.
const RouteStatePrefix = "route:"

// Decision is what a router decided in one run and partition. It is stored
// once and reused by every retry or re-run in that run, so the router's
// function is not called again.
type Decision struct {
	// Branches are the branches chosen.
	Branches []string `json:"branches"`
	// Available are the router's branches when it decided.
	Available []string `json:"available"`
	// Fallback is true when the router failed for good and its fallback=
	// branch was taken; Error is that failure.
	Fallback bool   `json:"fallback,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Router is the strategy of a router asset: its function returns a
// flowstone.Route naming some of its branches (the assets routed_from it).
// Its value is the route taken.
type Router struct {
	// Fallback is the branch taken when the router fails for good.
	Fallback string
}

// branches returns the keys of the assets routed from router, sorted.
func branches(t Task, router string) []string {
	var out []string
	for _, p := range t.Peers() {
		if r, ok := p.Strategy.(Routed); ok && r.Router == router {
			out = append(out, p.Key)
		}
	}
	slices.Sort(out)
	return out
}

// Run implements Strategy.
func (r Router) Run(ctx context.Context, t Task) (Result, error) {
	key := t.Asset().Key()
	state := RouteStatePrefix + key
	var d Decision
	found, err := t.LoadState(ctx, state, &d)
	if err != nil {
		return Result{}, err
	}
	if found {
		return Done(flowstone.Route{Branches: d.Branches}), nil
	}
	available := branches(t, key)
	v, err := t.Call(ctx)
	switch {
	case err != nil && r.Fallback != "" && (t.FinalAttempt() || errors.Is(err, flowstone.ErrPermanent)):
		d = Decision{Branches: []string{r.Fallback}, Available: available, Fallback: true, Error: err.Error()}
	case err != nil:
		return Result{}, err
	default:
		route, ok := v.(flowstone.Route)
		if !ok {
			return Result{}, flowstone.Permanentf("router %s returned %T, not flowstone.Route", key, v)
		}
		for _, b := range route.Branches {
			if !slices.Contains(available, b) {
				return Result{}, flowstone.Permanentf("router %s routed to %q, which is not one of its branches (%s)", key, b, strings.Join(available, ", "))
			}
		}
		d = Decision{Branches: slices.Compact(slices.Sorted(slices.Values(route.Branches))), Available: available}
	}
	saved, err := t.SaveState(ctx, state, d)
	if err != nil {
		return Result{}, fmt.Errorf("store decision of %s: %w", key, err)
	}
	if !saved { // another attempt decided first: its decision stands
		if _, err := t.LoadState(ctx, state, &d); err != nil {
			return Result{}, err
		}
	}
	return Done(flowstone.Route{Branches: d.Branches}), nil
}

// Routed is the strategy of an asset that runs only when Router selects
// it; otherwise it is skipped.
type Routed struct {
	Router string
}

// Run implements Strategy. The router's value is the route it took (from
// this run, or an earlier one it was reused from).
func (r Routed) Run(ctx context.Context, t Task) (Result, error) {
	var route flowstone.Route
	if err := t.LoadValue(ctx, r.Router, &route); err != nil {
		return Result{}, fmt.Errorf("route of %s: %w", r.Router, err)
	}
	if key := t.Asset().Key(); !route.Selects(key) {
		chosen := strings.Join(route.Branches, ", ")
		if chosen == "" {
			chosen = "no branch"
		}
		return Skip(fmt.Sprintf("router %s chose %s", r.Router, chosen)), nil
	}
	return Standard{}.Run(ctx, t)
}
