// Package refunds is a FlowStone pipeline that uses every asset kind but
// scatter: a day's refund requests are triaged by a router (large amounts go
// to manual review, the rest are approved automatically), a join decides
// from whichever review ran, a gate holds the refund batch until someone in
// finance approves it, the payout follows, and follow-up calls run under a
// user-defined kind, BusinessHours, that skips them outside office hours.
//
// The asset functions are plain Go in refunds.go; the BusinessHoursOnly
// strategy is in hours.go; flowstone_gen.go is generated from the
// //flowstone: directives. docs/kinds.md walks through a run.
//
//flowstone:pipeline name=refunds
package refunds

//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
