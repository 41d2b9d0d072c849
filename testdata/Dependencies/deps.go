package deps

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

var (
	Days  = flowstone.Daily("2024-01-01")
	Hours = flowstone.Hourly("2024-01-01T00")
)

type Order struct{}
type Order2 struct{}
type Revenue struct{}

//flowstone:asset partitions=Days
func CleanOrders(ctx context.Context) ([]Order2, error) { return nil, nil }

//flowstone:asset partitions=Days
func DailyRevenue(ctx context.Context, cleanOrders []Order) (Revenue, error) { return Revenue{}, nil }

//flowstone:asset
func Notify(ctx context.Context) error { return nil }

//flowstone:asset partitions=Days deps=notyfy,daily_revenue,cumulative,clean_orders
func Cumulative(ctx context.Context, notify int, cumulative int, cleanOrders []Order2) (int, error) {
	return 0, nil
}

//flowstone:asset partitions=Days
func Running(ctx context.Context, previous flowstone.Previous[int], running flowstone.Previous[string]) (int, error) {
	return 0, nil
}

//flowstone:asset
func Unparted(ctx context.Context, unparted flowstone.Previous[int], dailyRevenue Revenue) (int, error) {
	return 0, nil
}

//flowstone:asset partitions=Days
func Tolerant(ctx context.Context, dailyRevenu flowstone.Outcome[Revenue], cleanOrder []Order2) (int, error) {
	return 0, nil
}

//flowstone:asset
func Reference(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset partitions=Hours
func Hourly(ctx context.Context, reference map[flowstone.Partition]int, cleanOrders []Order2) (int, error) {
	return 0, nil
}

//flowstone:asset partitions=Days
func SameSet(ctx context.Context, cleanOrders map[flowstone.Partition][]Order2) error { return nil }
