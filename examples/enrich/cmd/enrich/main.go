// Command enrich runs the enrich example pipeline with FlowStone's command
// line: materialize follows the scatter's progress live, and status shows
// it for a run that other processes work on.
//
//	go run ./examples/enrich/cmd/enrich materialize --database sqlite:///tmp/enrich.db
//	go run ./examples/enrich/cmd/enrich materialize --detach
//	go run ./examples/enrich/cmd/enrich worker &
//	go run ./examples/enrich/cmd/enrich status RUN_ID
//
// The database is ./flowstone.db unless --database or FLOWSTONE_DATABASE
// names another.
package main

import (
	"context"
	"os"

	"github.com/flowstone-go/flowstone/examples/enrich"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.App{
		Name:  "enrich",
		Short: "The enrich example pipeline: enrich generated customer records from a CRM, then segment them",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{
				runtime.Bind(enrich.Pipeline(), enrich.Resources{Crm: enrich.NewCRM()}),
			}, nil
		},
	}, os.Args[1:], os.Stdout, os.Stderr))
}
