package web_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/examples/refunds"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/web"
)

// While the database is unreachable the page keeps being served: the API
// answers 503 saying so, a run's event stream says so once and stays
// open, and both carry on once the database is back.
func TestPageRidesOutADatabaseOutage(t *testing.T) {
	t.Parallel()
	pg, ok := testdb.Postgres(t)
	if !ok {
		t.Skip("PostgreSQL only: SQLite has no server to lose")
	}
	url, schema := pg.New(t)
	proxy, through := testdb.NewProxy(t, url)
	ctx := t.Context()
	eng, err := runtime.Open(ctx, runtime.Config{Database: through, Schema: schema, NoWorkers: true, Secret: []byte("a secret of sixteen bytes or more")},
		runtime.Bind(refunds.Pipeline(), refunds.Resources{Bank: refunds.NewBank()}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close(t.Context()) })
	h, err := web.New(eng, web.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	run, err := eng.Materialize(ctx, refunds.Pipeline(), runtime.Request{Partition: day})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := http.Get(srv.URL + "/api/runs/" + run.ID + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	events := bufio.NewScanner(stream.Body)
	events.Buffer(nil, 1<<20)
	next := func() string {
		for events.Scan() {
			if ev, ok := strings.CutPrefix(events.Text(), "event: "); ok {
				return ev
			}
		}
		t.Fatalf("the run's stream ended: %v", events.Err())
		return ""
	}
	if ev := next(); ev != "run" {
		t.Fatalf("first event %q; want run", ev)
	}

	proxy.Cut()
	res, err := http.Get(srv.URL + "/api/runs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "database unreachable, retrying") {
		t.Fatalf("GET /api/runs with the database away: %s %s", res.Status, body)
	}
	if ev := next(); ev != "unreachable" {
		t.Fatalf("event %q with the database away; want unreachable", ev)
	}

	proxy.Restore()
	if ev := next(); ev != "run" {
		t.Fatalf("event %q once the database is back; want run", ev)
	}
	res, err = http.Get(srv.URL + "/api/runs")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/runs once the database is back: %s", res.Status)
	}
}
