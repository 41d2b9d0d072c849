// Package checks has three checks on one asset: a blocking one that takes
// a resource the asset takes too, a warning, and a renamed one.
package checks

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

// DB is the shop's database.
type DB struct{}

// Revenue is a day's revenue.
type Revenue struct{ Cents int64 }

// DailyRevenue sums the day's orders.
//
//flowstone:asset
func DailyRevenue(ctx context.Context, db *DB) (Revenue, error) { return Revenue{}, nil }

// Positive fails when revenue is negative.
//
//flowstone:check asset=daily_revenue blocking
func Positive(ctx context.Context, dailyRevenue Revenue, db *DB) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{Passed: dailyRevenue.Cents >= 0}, nil
}

//flowstone:check asset=daily_revenue severity=warn
func Round(ctx context.Context, value Revenue, limit int) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{Passed: value.Cents%100 == 0}, nil
}

//flowstone:check asset=daily_revenue name=not_huge severity=error
func NotHuge(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{Passed: r.Cents < 1e12}, nil
}
