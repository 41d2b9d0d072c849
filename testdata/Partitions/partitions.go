// Package partitions maps partitions: hourly to daily, the previous
// partition of a cumulative asset, and name= keys.
package partitions

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

var (
	Hours = flowstone.Hourly("2024-01-01T00")
	Days  = flowstone.Daily("2024-01-01")
)

//flowstone:asset partitions=Hours
func HTTPLogs(ctx context.Context, p flowstone.Partition) ([]string, error) { return nil, nil }

// DailyHits counts one day's hits from its hours.
//
//flowstone:asset partitions=Days name=hits_per_day
func DailyHits(ctx context.Context, httpLogs map[flowstone.Partition][]string) (int, error) {
	return len(httpLogs), nil
}

// Total is cumulative.
//
//flowstone:asset partitions=Days schedule="@daily"
func Total(ctx context.Context, hitsPerDay int, total flowstone.Previous[int]) (int, error) {
	return total.Value + hitsPerDay, nil
}

// AllTime reads every day.
//
//flowstone:asset schedule="@every 1h30m"
func AllTime(ctx context.Context, total map[flowstone.Partition]int) (int, error) { return 0, nil }

// Reference is unpartitioned and read by a partitioned asset.
//
//flowstone:asset
func Reference(ctx context.Context) (map[string]string, error) { return nil, nil }

//flowstone:asset partitions=Days
func Enriched(ctx context.Context, reference map[string]string, hitsPerDay int) (string, error) {
	return "", nil
}
