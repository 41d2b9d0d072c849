package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/testdb"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/runtime/internal/longhistory"
	"github.com/flowstone-go/flowstone/runtime/web"
)

// staleAnswer is what every view says of one asset's staleness.
type staleAnswer struct {
	Reasons    []string              `json:"staleReasons"`
	Partitions []flowstone.Partition `json:"stalePartitions"`
}

// After 100,000 materializations recorded through the store, staleness is
// the same in every place a user reads it (Engine.Staleness, the graph,
// the Health view, an asset's page, the assets and show commands), and
// it is what the history makes it: asset_01 stale at the partitions of
// asset_00 materialized again, its downstream stale by it, asset_09 by
// its code version at every partition.
func TestStalenessAfterLongHistoryEverywhere(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 100,000 materializations")
	}
	t.Parallel()
	for _, db := range testdb.All(t) {
		t.Run(db.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			url, schema := db.New(t)
			p := longhistory.Pipeline()
			eng, err := runtime.Open(ctx, runtime.Config{Database: url, Schema: schema, NoWorkers: true, Logger: slog.New(slog.DiscardHandler)},
				runtime.Bind(p, nil))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = eng.Close(context.Background()) })
			longhistory.InsertLean(t, url, schema, 100_000)

			want := map[string]staleAnswer{}
			var renewed, all []flowstone.Partition
			for k := range longhistory.Partitions {
				all = append(all, flowstone.Partition(longhistory.Key(k)))
			}
			renewed = all[:longhistory.Renewed]
			want["asset_01"] = staleAnswer{[]string{"upstream asset_00 has a newer materialization (2020-01-01, 2020-01-02, 2020-01-03 and 2 more)"}, renewed}
			for a := 2; a < longhistory.Assets-1; a++ {
				want[longhistory.Asset(a)] = staleAnswer{Reasons: []string{fmt.Sprintf("upstream %s is stale", longhistory.Asset(a-1))}}
			}
			want["asset_09"] = staleAnswer{[]string{"code version changed (v1 → v2)", "upstream asset_08 is stale"}, all}
			same := func(where, asset string, got staleAnswer) {
				t.Helper()
				w := want[asset]
				if !slices.Equal(got.Reasons, w.Reasons) || !slices.Equal(got.Partitions, w.Partitions) {
					t.Errorf("%s: %s stale by %q at %v; want %q at %v", where, asset, got.Reasons, got.Partitions, w.Reasons, w.Partitions)
				}
			}

			ss, err := eng.Staleness(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				if !s.Materialized {
					t.Errorf("Staleness: %s not materialized", s.Asset)
				}
				same("Staleness", s.Asset, staleAnswer{s.Reasons, s.Partitions})
			}

			h, err := web.New(eng, web.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			get := func(path string, into any) {
				t.Helper()
				res, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %s", path, res.Status)
				}
				if err := json.NewDecoder(res.Body).Decode(into); err != nil {
					t.Fatal(err)
				}
			}
			var graph []struct {
				Assets []struct {
					Key string `json:"key"`
					staleAnswer
				} `json:"assets"`
			}
			get("/api/graph", &graph)
			for _, n := range graph[0].Assets {
				same("graph", n.Key, n.staleAnswer)
			}
			var health struct {
				Stale []struct {
					Asset string `json:"asset"`
					staleAnswer
				} `json:"stale"`
			}
			get("/api/health", &health)
			if len(health.Stale) != len(want) {
				t.Errorf("health: %d stale assets, want %d", len(health.Stale), len(want))
			}
			for _, s := range health.Stale {
				same("health", s.Asset, s.staleAnswer)
			}
			for _, a := range []string{"asset_00", "asset_01", "asset_09"} {
				var page struct {
					Node staleAnswer `json:"node"`
				}
				get("/api/pipelines/history/assets/"+a, &page)
				same("asset page", a, page.Node)
			}

			app := cli.App{Name: "history", Bind: func(context.Context) ([]runtime.Binding, error) {
				return []runtime.Binding{runtime.Bind(longhistory.Pipeline(), nil)}, nil
			}}
			flags := []string{"--database", url}
			if schema != "" {
				flags = append(flags, "--schema", schema)
			}
			command := func(args ...string) string {
				t.Helper()
				var out, errOut bytes.Buffer
				if code := cli.Main(ctx, app, append(slices.Clone(flags), args...), &out, &errOut); code != 0 {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
				}
				return out.String()
			}
			var lines []string
			for _, l := range strings.Split(command("assets"), "\n") {
				if strings.HasPrefix(l, "stale ") {
					lines = append(lines, l)
				}
			}
			var wantLines []string
			for a := range longhistory.Assets {
				if w, ok := want[longhistory.Asset(a)]; ok {
					wantLines = append(wantLines, "stale "+longhistory.Asset(a)+": "+strings.Join(w.Reasons, "; "))
				}
			}
			if !slices.Equal(lines, wantLines) {
				t.Errorf("assets command:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
			}
			for _, a := range []string{"asset_00", "asset_09"} {
				var got []string
				for _, l := range strings.Split(command("show", a), "\n") {
					if r, ok := strings.CutPrefix(l, "stale:"); ok {
						got = append(got, strings.TrimSpace(r))
					}
				}
				same("show command", a, staleAnswer{Reasons: got, Partitions: want[a].Partitions})
			}
		})
	}
}
