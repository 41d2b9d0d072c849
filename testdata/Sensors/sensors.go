// Package sensors has two sensors: one shares a resource with an asset, one
// is renamed and takes nothing but the cursor.
package sensors

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone"
)

// DB is the shop's database.
type DB struct{}

// Order is one order.
type Order struct{ ID string }

// RawOrders reads the day's orders.
//
//flowstone:asset
func RawOrders(ctx context.Context, p flowstone.Partition, db *DB) ([]Order, error) {
	return nil, nil
}

// OrderCount counts them.
//
//flowstone:asset
func OrderCount(ctx context.Context, rawOrders []Order) (int, error) {
	return len(rawOrders), nil
}

// NewOrders asks for a run whenever orders arrived after the cursor.
//
//flowstone:sensor every=30s targets=raw_orders,order_count
func NewOrders(ctx context.Context, cursor string, db *DB, clock func() time.Time) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{Cursor: cursor}, nil
}

//flowstone:sensor name=nightly every=1h30m targets="order_count"
func checkNightly(ctx context.Context, _ string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

// in is named like the wrapper's Inputs parameter, which must not hide it.
//
//flowstone:sensor name=inbox every=500ms targets=raw_orders
func in(ctx context.Context, cursor string, db *DB) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}
