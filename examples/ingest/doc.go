// Package ingest is a FlowStone pipeline over time partitions: an hourly
// events asset, a daily rollup of a day's hours, and a cumulative running
// total that reads its own previous day.
//
//   - events is partitioned by hour (Hours). Its events are fake and
//     deterministic: the same hour always has the same events.
//   - daily_counts is partitioned by day (Days) and takes
//     map[flowstone.Partition]EventBatch: a run of one day materializes the
//     day's 24 hours first (23 or 25 wall-clock hours never occur here: the
//     sets are in UTC; docs/partitions.md shows a zone with DST).
//     schedule="@daily" materializes the newest complete day every midnight.
//   - running_total adds each day's count to its own previous day's value
//     (flowstone.Previous); the first day starts from zero.
//   - the sensor arrived_days watches a drop directory (dropdir.go) and asks
//     for a run of daily_counts for each day whose marker file arrived,
//     once per file (its run key), remembering the last file seen in its
//     cursor.
//
// The functions are plain Go in ingest.go; flowstone_gen.go is generated
// from their //flowstone: directives. docs/partitions.md walks through it
// with the command in cmd/ingest.
//
//flowstone:pipeline name=ingest
package ingest

//go:generate go run github.com/flowstone-go/flowstone/cmd/flowstonegen
