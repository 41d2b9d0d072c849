// Package orders is a small FlowStone pipeline: it fakes a day of orders,
// cleans them, sums the day's revenue in the run's currency and publishes a
// report. Its asset functions are plain Go in orders.go; flowstone_gen.go is
// generated from their //flowstone: directives.
//
//flowstone:pipeline name=orders
package orders

//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
