package flowstone

import "strings"

// Route is a router asset's decision: the keys of the branches to run.
// Branches not named are recorded as skipped.
type Route struct {
	Branches []string `json:"branches"`
}

// RouteTo returns a Route selecting the given branches (asset keys; use the
// generated Asset constants).
func RouteTo(branches ...string) Route {
	return Route{Branches: append([]string(nil), branches...)}
}

// Selects reports whether the route selects branch.
func (r Route) Selects(branch string) bool {
	for _, b := range r.Branches {
		if b == branch {
			return true
		}
	}
	return false
}

// String lists the selected branches.
func (r Route) String() string { return "route(" + strings.Join(r.Branches, ",") + ")" }
