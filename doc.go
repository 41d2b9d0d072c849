// Package flowstone is the small vocabulary that annotated asset functions use:
// partition keys and partition sets, routes, outcomes of tolerant
// dependencies, skip and permanent-failure errors, and helpers that attach
// metadata or fetch a logger from the context a materialization runs in.
//
// It imports no database or queue code, so asset code stays plain Go. The
// generator (cmd/flowstonegen) turns annotated functions into a typed
// pipeline; the runtime package executes it.
//
// An asset is a top-level function whose doc comment holds a
// //flowstone:asset line:
//
//	// DailyRevenue sums the cleaned orders of one day.
//	//
//	//flowstone:asset partitions=Days retries=3 timeout=5m
//	func DailyRevenue(ctx context.Context, p flowstone.Partition, cleanOrders []Order) (Revenue, error)
package flowstone
