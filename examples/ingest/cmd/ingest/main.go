// Command ingest runs the ingest example pipeline with FlowStone's command
// line: backfills with live progress, the status of each partition, the
// sensor's cursor.
//
//	go run ./examples/ingest/cmd/ingest backfill running_total --from 2024-01-01 --to 2024-01-07 --max-concurrent 1
//	go run ./examples/ingest/cmd/ingest partitions events daily_counts --from 2024-01-01 --to 2024-01-02
//	INGEST_ARRIVED=2024-01-08,2024-01-09 go run ./examples/ingest/cmd/ingest worker
//	go run ./examples/ingest/cmd/ingest sensors
//
// INGEST_ARRIVED lists the days whose marker files are in the fake drop
// directory the sensor watches (none by default). The database is
// ./flowstone.db unless --database or FLOWSTONE_DATABASE names another.
package main

import (
	"context"
	"os"
	"strings"

	"github.com/flowstone-go/flowstone/examples/ingest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func main() {
	var arrived []string
	if v := os.Getenv("INGEST_ARRIVED"); v != "" {
		arrived = strings.Split(v, ",")
	}
	os.Exit(cli.Main(context.Background(), cli.App{
		Name:  "ingest",
		Short: "The ingest example pipeline: hourly events, daily counts, a running total, a schedule and a sensor",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{
				runtime.Bind(ingest.Pipeline(), ingest.Resources{Drop: ingest.NewDropDir(arrived...)}),
			}, nil
		},
	}, os.Args[1:], os.Stdout, os.Stderr))
}
