package orders_test

import (
	"context"
	"testing"

	"github.com/flowstone-go/flowstone/examples/orders"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/runtime"
)

func resources() orders.Resources { return orders.Resources{Rates: orders.NewFXClient()} }

func TestDailyRevenue(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		res := flowstonetest.Materialize(t, orders.Pipeline(), resources(), db,
			flowstonetest.Partition("2024-01-02"), flowstonetest.Config(orders.Settings{Currency: "EUR"}))
		rev, err := orders.LoadDailyRevenue(t.Context(), res.Engine(), "2024-01-02")
		if err != nil {
			t.Fatal(err)
		}
		clean, err := orders.LoadCleanOrders(t.Context(), res.Engine(), "2024-01-02")
		if err != nil {
			t.Fatal(err)
		}
		if rev.Day != "2024-01-02" || rev.Currency != "EUR" || rev.Orders != len(clean) || rev.Total <= 0 {
			t.Errorf("daily_revenue = %+v for %d clean orders", rev, len(clean))
		}
		if st := res.AssetStatus(orders.AssetPublishReport); st != runtime.StatusSucceeded {
			t.Errorf("publish_report %s", st)
		}
	})
}

func TestUnknownCurrencyFailsForGood(t *testing.T) {
	t.Parallel()
	res := flowstonetest.Materialize(t, orders.Pipeline(), resources(), flowstonetest.Select("+daily_revenue"),
		flowstonetest.Partition("2024-01-02"), flowstonetest.Config(orders.Settings{Currency: "CHF"}), flowstonetest.AllowFailure())
	a := res.Assets[orders.AssetDailyRevenue]
	if a.Status != runtime.StatusFailed || a.Attempts != 1 || a.Error != `fx: unknown currency "CHF"` {
		t.Errorf("daily_revenue: %+v; want failed at once (a permanent error)", a)
	}
}

func TestCleanOrdersKeepsPaidOrders(t *testing.T) {
	t.Parallel()
	raw := []orders.Order{
		{ID: "1", Amount: 10, Currency: "eur", Status: "paid"},
		{ID: "2", Amount: 5, Currency: "USD", Status: "refunded"},
		{ID: "3", Amount: 0, Currency: "USD", Status: "paid"},
		{ID: "4", Amount: 7, Currency: "GBP", Status: "test"},
	}
	clean, err := flowstonetest.Call[[]orders.Order](context.Background(), orders.Pipeline(), orders.AssetCleanOrders,
		flowstonetest.Inputs{Values: map[string]any{orders.AssetRawOrders: raw}})
	if err != nil || len(clean) != 1 || clean[0].ID != "1" || clean[0].Currency != "EUR" {
		t.Fatalf("clean_orders = %+v, %v; want order 1 in EUR", clean, err)
	}
}
