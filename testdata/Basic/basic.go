// Package basic is the contract's example: partitions, a config type, a
// resource, ordering-only deps and an error-only asset.
package basic

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

var Days = flowstone.Daily("2024-01-01")

//flowstone:config
type Settings struct {
	Currency string `json:"currency"`
}

// Defaults is the config of scheduled runs.
var Defaults = Settings{Currency: "EUR"}

type Order struct{ Amount float64 }

type Revenue struct{ Total float64 }

type FXClient struct{}

// RawOrders reads the day's orders.
//
//flowstone:asset partitions=Days retries=3 timeout=90s queue=ingest priority=2 group=shop tags=raw,orders
func RawOrders(ctx context.Context, p flowstone.Partition) ([]Order, error) { return nil, nil }

//flowstone:asset partitions=Days code_version="v3"
func CleanOrders(ctx context.Context, rawOrders []Order) ([]Order, error) { return rawOrders, nil }

// DailyRevenue sums the cleaned orders of one day.
//
//flowstone:asset partitions=Days retries=3 timeout=5m
func DailyRevenue(ctx context.Context, p flowstone.Partition, cleanOrders []Order, rates *FXClient, cfg Settings) (Revenue, error) {
	return Revenue{}, nil
}

// Publish has no value.
//
//flowstone:asset partitions=Days deps=daily_revenue schedule="0 6 * * *" config=Defaults
func Publish(ctx context.Context) error { return nil }
