package cli_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/runtime/cli"
)

var metricsRe = regexp.MustCompile(`metrics at (http://\S+/metrics)`)

// A worker started with --metrics-addr serves the engine's metrics, and
// River's, to Prometheus.
func TestWorkerServesMetrics(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := ordersApp()
		r := invoke(ctx, app, args(db, "materialize", "--partition", "2024-01-02", "--config", `{"currency":"EUR"}`, "--detach")...)
		if r.code != 0 {
			t.Fatalf("materialize: %s", r)
		}
		id := runID(t, r)

		wctx, stop := context.WithCancel(ctx)
		defer stop()
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Main(wctx, app, args(db, "worker", "--metrics-addr", "127.0.0.1:0", "--drain-timeout", "5s"), &out, &errOut)
		}()
		if r := invoke(ctx, app, args(db, "status", id, "--follow")...); r.code != 0 {
			t.Fatalf("status --follow: %s", r)
		}
		m := metricsRe.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("the worker printed no metrics address: %s %s", out.String(), errOut.String())
		}
		// The last attempt is counted once it is recorded, just after the
		// run is.
		var body string
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(body, `flowstone_asset="publish_report"`) && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(m[1])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		for _, want := range []string{
			`flowstone_materializations_total{flowstone_asset="publish_report",flowstone_kind="standard",flowstone_pipeline="orders",flowstone_status="succeeded"`,
			`flowstone_attempt_duration_seconds_bucket{`,
			`flowstone_queue_lag_seconds_count{`,
			`flowstone_runs_in_flight{`,
			`river_work_count_total{`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("no %s in\n%s", want, body)
			}
		}
		stop()
		if code := <-done; code != 0 {
			t.Errorf("worker: exit %d\n%s%s", code, out.String(), errOut.String())
		}
	})
}
