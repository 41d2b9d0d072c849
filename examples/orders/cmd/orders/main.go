// Command orders runs the orders example pipeline with FlowStone's command
// line: materialize a day, follow it, list the assets, draw the graph, or
// run as one of several worker processes.
//
//	go run ./examples/orders/cmd/orders materialize --partition 2024-01-02 --config '{"currency":"EUR"}'
//	go run ./examples/orders/cmd/orders assets
//
// The database is ./flowstone.db unless --database or FLOWSTONE_DATABASE
// names another (sqlite://PATH or postgres://...).
package main

import (
	"context"
	"os"

	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.App{
		Name:  "orders",
		Short: "The orders example pipeline: a day of orders, cleaned, summed and reported",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			// Resources are built per process: each worker has its own client.
			return []runtime.Binding{
				runtime.Bind(orders.Pipeline(), orders.Resources{Rates: orders.NewFXClient()}),
			}, nil
		},
	}, os.Args[1:], os.Stdout, os.Stderr))
}
