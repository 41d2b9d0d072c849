package lake_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/examples/lake"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
)

// TestCommandLine materializes a day through the command line, as
// cmd/lake does, with the tables going to the S3 bucket of TestMain.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	for _, db := range testdb.All(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			api := httptest.NewServer(lake.NewFakeAPI())
			t.Cleanup(api.Close)
			url, schema := db.New(t)
			args := []string{"--database", url, "materialize", "-p", "2024-01-04"}
			if schema != "" {
				args = append([]string{"--schema", schema}, args...)
			}
			var out, errOut bytes.Buffer
			code := cli.Main(context.Background(), cli.App{
				Name: "lake",
				Bind: func(context.Context) ([]runtime.Binding, error) {
					return []runtime.Binding{runtime.Bind(lake.Pipeline(), lake.Resources{Fx: lake.NewFX(api.URL, "EUR")})}, nil
				},
			}, args, &out, &errOut)
			if code != cli.ExitOK || !strings.Contains(out.String(), "4 succeeded") {
				t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
			}
		})
	}
}
