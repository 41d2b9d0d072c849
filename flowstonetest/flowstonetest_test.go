package flowstonetest_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/runtime"
)

var eur = flowstonetest.Config(orders.Settings{Currency: "EUR"})

func resources() orders.Resources { return orders.Resources{Rates: orders.NewFXClient()} }

func TestMaterializeLoadsAndReuses(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		res := flowstonetest.Materialize(t, orders.Pipeline(), resources(), db, flowstonetest.Partition("2024-01-02"), eur)
		if res.Status != runtime.RunSucceeded || res.AssetStatus(orders.AssetPublishReport) != runtime.StatusSucceeded {
			t.Fatalf("run %s, publish_report %s", res.Status, res.AssetStatus(orders.AssetPublishReport))
		}
		rev, err := orders.LoadDailyRevenue(t.Context(), res.Engine(), "2024-01-02")
		if err != nil || rev.Currency != "EUR" || rev.Total <= 0 {
			t.Fatalf("LoadDailyRevenue = %+v, %v", rev, err)
		}
		if got := flowstonetest.Value[orders.Revenue](t, res, orders.AssetDailyRevenue); got != rev {
			t.Errorf("Value = %+v, want %+v", got, rev)
		}

		// Again on the same database: reused; forcing daily_revenue
		// recomputes it alone.
		again := res.Materialize(t, flowstonetest.Partition("2024-01-02"), eur, flowstonetest.Select("daily_revenue"))
		if st := again.AssetStatus(orders.AssetDailyRevenue); st != runtime.StatusReused {
			t.Errorf("second run: daily_revenue %s, want reused", st)
		}
		forced := res.Materialize(t, flowstonetest.Partition("2024-01-02"), eur, flowstonetest.Select("daily_revenue"), flowstonetest.Force())
		for k, want := range map[string]runtime.AssetStatus{
			orders.AssetRawOrders: runtime.StatusReused, orders.AssetCleanOrders: runtime.StatusReused,
			orders.AssetDailyRevenue: runtime.StatusSucceeded, orders.AssetPublishReport: "",
		} {
			if got := forced.AssetStatus(k); got != want {
				t.Errorf("forced run: %s %q, want %q", k, got, want)
			}
		}
	})
}

func TestMaterializeSelects(t *testing.T) {
	t.Parallel()
	res := flowstonetest.Materialize(t, orders.Pipeline(), resources(), flowstonetest.Partition("2024-01-03"),
		flowstonetest.Select("group:ingest"))
	if len(res.Order) != 1 || res.Order[0] != orders.AssetRawOrders {
		t.Errorf("group:ingest ran %v, want [raw_orders]", res.Order)
	}
}

// fatal records what a helper reports through Fatalf, and stops there
// as testing.T does.
type fatal struct {
	testing.TB
	msg string
}

func (f *fatal) Helper() {}

func (f *fatal) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	goruntime.Goexit()
}

// failing runs fn with a TB whose Fatalf is recorded, and returns the
// message.
func failing(t *testing.T, fn func(tb testing.TB)) string {
	f := &fatal{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestMaterializeFailsTheTestWithTheRunsErrors(t *testing.T) {
	t.Parallel()
	msg := failing(t, func(tb testing.TB) {
		flowstonetest.Materialize(tb, orders.Pipeline(), resources(), flowstonetest.Partition("2024-01-03"),
			flowstonetest.Config(orders.Settings{Currency: "CHF"}))
	})
	for _, want := range []string{
		"flowstonetest: run run_", "of orders (partition 2024-01-03) failed:",
		"\n    daily_revenue: failed after 1 attempt(s): fx: unknown currency \"CHF\"",
		"\n    publish_report: upstream_failed: upstream daily_revenue failed",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "raw_orders") {
		t.Errorf("message names an asset that succeeded:\n%s", msg)
	}

	msg = failing(t, func(tb testing.TB) {
		flowstonetest.Materialize(tb, orders.Pipeline(), resources(), flowstonetest.Select("daily_revenu"))
	})
	if !strings.Contains(msg, `unknown asset: "daily_revenu" in pipeline orders (did you mean daily_revenue?)`) {
		t.Errorf("bad selection: %s", msg)
	}

	res := flowstonetest.Materialize(t, orders.Pipeline(), resources(), flowstonetest.Partition("2024-01-03"),
		flowstonetest.Config(orders.Settings{Currency: "CHF"}), flowstonetest.AllowFailure())
	if res.Status != runtime.RunFailed || res.AssetStatus(orders.AssetDailyRevenue) != runtime.StatusFailed {
		t.Errorf("AllowFailure: run %s, daily_revenue %s", res.Status, res.AssetStatus(orders.AssetDailyRevenue))
	}
}

func TestCallStubsUpstreamValues(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := orders.Pipeline()
	clean := []orders.Order{{ID: "a", Amount: 10, Currency: "EUR", Status: "paid"}, {ID: "b", Amount: 5, Currency: "EUR", Status: "paid"}}
	rev, err := flowstonetest.Call[orders.Revenue](ctx, p, orders.AssetDailyRevenue, flowstonetest.Inputs{
		Partition: "2024-01-02",
		Values:    map[string]any{orders.AssetCleanOrders: clean},
		Config:    orders.Settings{Currency: "EUR"},
		Resources: resources(),
	})
	if err != nil || rev != (orders.Revenue{Day: "2024-01-02", Currency: "EUR", Total: 15, Orders: 2}) {
		t.Fatalf("Call = %+v, %v", rev, err)
	}

	kept, err := flowstonetest.Call[[]orders.Order](ctx, p, orders.AssetCleanOrders, flowstonetest.Inputs{
		Values: map[string]any{orders.AssetRawOrders: []orders.Order{{ID: "x", Amount: 1, Status: "test"}, {ID: "y", Amount: 2, Currency: "usd", Status: "paid"}}},
	})
	if err != nil || len(kept) != 1 || kept[0].ID != "y" || kept[0].Currency != "USD" {
		t.Errorf("clean_orders = %+v, %v", kept, err)
	}

	_, err = flowstonetest.Call[orders.Revenue](ctx, p, orders.AssetDailyRevenue, flowstonetest.Inputs{Config: orders.Settings{}, Resources: resources()})
	if err == nil || !strings.Contains(err.Error(), "no stubbed value for clean_orders") {
		t.Errorf("missing stub: %v", err)
	}
	_, err = flowstonetest.Call[orders.Revenue](ctx, p, "daily", flowstonetest.Inputs{})
	if !errors.Is(err, runtime.ErrUnknownAsset) {
		t.Errorf("unknown asset: %v", err)
	}
	_, err = flowstonetest.Call[int](ctx, p, orders.AssetCleanOrders, flowstonetest.Inputs{Values: map[string]any{orders.AssetRawOrders: []orders.Order{}}})
	if err == nil || !strings.Contains(err.Error(), "returned []orders.Order, not int") {
		t.Errorf("wrong type: %v", err)
	}
}
