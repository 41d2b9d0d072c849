// Package enrich is a FlowStone scatter/gather pipeline: a few thousand
// generated customer records are enriched one by one from a CRM, in batches
// of 50 with at most 200 records in flight across every process, and the
// results are gathered twice: segments counts the enriched customers per
// tier, and quality lists the records the CRM could not enrich.
//
// The CRM is a deterministic in-process fake (crm.go): about one record in
// a hundred belongs to a company it has no account for and fails for good,
// and about one in a hundred fails once with a transient error and succeeds
// on its retry. The permanent failures stay under the 2% failure threshold,
// so a run succeeds partially.
//
// The asset functions are plain Go in enrich.go; flowstone_gen.go is
// generated from their //flowstone: directives. docs/scatter.md walks
// through a run.
//
//flowstone:pipeline name=enrich
package enrich

//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
