package sensoroptions

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

//flowstone:asset
func RawOrders(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset
func OrderCount(ctx context.Context, rawOrders int) (int, error) { return 0, nil }

// NoOptions needs every= and targets=.
//
//flowstone:sensor
func NoOptions(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor evry=30s every=1m every=2m targets=raw_orders colour=red
func Misspelled(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=0s targets
func ZeroInterval(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=soon targets="raw_orders,,order_count"
func BadValues(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=order_count,raw_order,nothing_like_it
func UnknownTargets(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets="raw_ordes"
func QuotedTarget(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor name=Bad-Name every=1m targets=raw_orders
func BadName(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor name every=1m targets=raw_orders
func BareName(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor name=orders every=1m targets=raw_orders
func First(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor name=orders every=1m targets=order_count
func Second(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

// Both is an asset and a sensor at once.
//
//flowstone:asset
//flowstone:sensor every=1m targets=raw_orders
func Both(ctx context.Context) (int, error) { return 0, nil }

// Misplaced is a type, not a function.
//
//flowstone:sensor every=1m targets=raw_orders
type Misplaced struct{}

// flowstone:sensor every=1m targets=raw_orders
func Lookalike(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensors every=1m
func Plural(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}
