// Command lake runs the lake example pipeline with FlowStone's command
// line. Its tables go to the bucket in LAKE_URL (mem:// when unset, which
// lasts as long as the process), and its API calls to FX_URL (when unset,
// an in-process fake API on 127.0.0.1):
//
//	go run ./examples/lake/cmd/lake materialize --partition 2024-01-02
//	LAKE_URL=file:///tmp/lake go run ./examples/lake/cmd/lake materialize -p 2024-01-02
//	LAKE_URL='s3://my-bucket/lake?region=eu-west-1' go run ./examples/lake/cmd/lake materialize -p 2024-01-02
//
// With file:///tmp/lake, the day's tables are in
// /tmp/lake/lake/trips/date=2024-01-02/ and
// /tmp/lake/lake/driver_totals/date=2024-01-02/; DuckDB reads them with
// SELECT * FROM read_parquet('/tmp/lake/lake/trips/*/*.parquet', hive_partitioning=true).
// S3 credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_PROFILE,
// an instance role) as the AWS SDK finds them.
package main

import (
	"context"
	"net/http/httptest"
	"os"

	"github.com/flowstone-go/flowstone/examples/lake"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

func main() {
	api := os.Getenv("FX_URL")
	if api == "" {
		srv := httptest.NewServer(lake.NewFakeAPI())
		defer srv.Close()
		api = srv.URL
	}
	code := cli.Main(context.Background(), cli.App{
		Name:  "lake",
		Short: "The lake example pipeline: daily trips as Parquet in a bucket, an FX API called over HTTP",
		Bind: func(ctx context.Context) ([]runtime.Binding, error) {
			return []runtime.Binding{
				runtime.Bind(lake.Pipeline(), lake.Resources{Fx: lake.NewFX(api, "EUR")}),
			}, nil
		},
	}, os.Args[1:], os.Stdout, os.Stderr)
	os.Exit(code)
}
