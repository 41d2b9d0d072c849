package lake_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/examples/lake"
	"github.com/flowstone-go/flowstone/flowstonehttp"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/internal/fakes3"
	"github.com/flowstone-go/flowstone/runtime"
)

// TestMain points Lake at an S3 server started in-process on loopback,
// with credentials in the environment as a deployment would have them.
func TestMain(m *testing.M) {
	fakes3.Credentials()
	u, stop, err := fakes3.Serve("warehouse", "tables")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("LAKE_URL", u)
	code := m.Run()
	stop()
	os.Exit(code)
}

func TestDailyTableThroughS3AndTheAPI(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx := context.Background()
		api := lake.NewFakeAPI()
		api.FailPosts = 2
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		fx := lake.NewFX(srv.URL, "EUR")
		// One retry in the client: the 429 is retried there; the POST's
		// answer is lost twice (a 504 after the API acted), so the asset's attempt fails and the
		// engine's retry of the asset sends it a third time.
		fx.Client = flowstonehttp.New(flowstonehttp.Options{Retries: 1, Backoff: time.Millisecond})

		const day = "2024-01-02"
		res := flowstonetest.Materialize(t, lake.Pipeline(), lake.Resources{Fx: fx}, db, flowstonetest.Partition(day))
		e := res.Engine()

		// The table is in the bucket, Hive-style, and reads back equal.
		want, _ := lake.Trips(ctx, day)
		got, err := lake.LoadTrips(ctx, e, day)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("trips read back from S3 (-want +got):\n%s", diff)
		}
		bucket, err := blobio.Open(ctx, os.Getenv("LAKE_URL"))
		if err != nil {
			t.Fatal(err)
		}
		defer bucket.Close()
		key := "lake/trips/date=" + day + "/" + res.Assets[lake.AssetTrips].Materialization + ".parquet"
		if _, err := bucket.ReadFile(ctx, key); err != nil {
			t.Fatalf("trips not at %s: %v", key, err)
		}

		// The downstream asset read them back and was stored as Parquet.
		totals, err := lake.LoadDriverTotals(ctx, e, day)
		if err != nil || len(totals) == 0 || totals[0].Currency != "EUR" {
			t.Fatalf("driver totals: %v %v", totals, err)
		}
		var trips int64
		for _, d := range totals {
			trips += d.Trips
		}
		paid := 0
		for _, tr := range want {
			if tr.Paid {
				paid++
			}
		}
		if trips != int64(paid) {
			t.Fatalf("totals count %d trips, want the %d paid ones", trips, paid)
		}

		// The API call was retried after its 429 and recorded.
		m, err := e.MaterializationByID(ctx, res.Assets[lake.AssetFXRates].Materialization)
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := m.Metadata[flowstonehttp.MetadataKey].(map[string]any)
		status, _ := sum["status"].(map[string]any)
		if sum["requests"] != float64(2) || status["429"] != float64(1) || status["200"] != float64(1) || !(sum["bytes_received"].(float64) > 0) {
			t.Fatalf("fx_rates metadata %v", m.Metadata)
		}

		// The publication's answer was lost twice; the client's retry and
		// the asset's retry sent the same Idempotency-Key, so the API
		// has one report.
		if res.Assets[lake.AssetPublished].Attempts != 2 {
			t.Fatalf("published took %d attempts, want 2", res.Assets[lake.AssetPublished].Attempts)
		}
		distinct, posts := api.Reports()
		if distinct != 1 || posts != 3 {
			t.Fatalf("API saw %d POSTs making %d reports, want 3 and 1", posts, distinct)
		}
		rec, err := lake.LoadPublished(ctx, e, day)
		if err != nil || rec.ID != "rep_1" || rec.Drivers != len(totals) {
			t.Fatalf("receipt %+v %v", rec, err)
		}
	})
}

func TestMissingObjectFailsLoudly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api := httptest.NewServer(lake.NewFakeAPI())
	t.Cleanup(api.Close)
	const day = "2024-01-05"
	res := flowstonetest.Materialize(t, lake.Pipeline(), lake.Resources{Fx: lake.NewFX(api.URL, "EUR")}, flowstonetest.SQLite(),
		flowstonetest.Partition(day), flowstonetest.Select(lake.AssetTrips))
	e := res.Engine()
	bucket, err := blobio.Open(ctx, os.Getenv("LAKE_URL"))
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	key := "lake/trips/date=" + day + "/" + res.Assets[lake.AssetTrips].Materialization + ".parquet"
	if err := lake.Lake.Delete(ctx, runtime.ValueRef{Pipeline: "lake", Asset: lake.AssetTrips, Partition: day, Materialization: res.Assets[lake.AssetTrips].Materialization}); err != nil {
		t.Fatal(err)
	}
	_, err = lake.LoadTrips(ctx, e, day)
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "asset trips") || !strings.Contains(err.Error(), day) {
		t.Fatalf("load of a deleted object: %v", err)
	}
}
