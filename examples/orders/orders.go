package orders

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// Days partitions the order assets by calendar day (UTC).
var Days = flowstone.Daily("2024-01-01")

// Settings is the run config: the currency revenue is reported in.
//
//flowstone:config
type Settings struct {
	Currency string `json:"currency"`
}

// Order is one order as the shop records it.
type Order struct {
	ID       string  `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
	Currency string  `json:"currency"`
	Status   string  `json:"status"` // paid, refunded, test
}

// Revenue is one day's revenue in one currency.
type Revenue struct {
	Day      flowstone.Partition `json:"day"`
	Currency string              `json:"currency"`
	Total    float64             `json:"total"`
	Orders   int                 `json:"orders"`
}

// RawOrders fetches the day's orders from the shop. Here they are faked,
// deterministically from the partition key, so every run of a day agrees.
//
//flowstone:asset partitions=Days retries=3 timeout=1m group=ingest tags=shop,raw
func RawOrders(ctx context.Context, day flowstone.Partition) ([]Order, error) {
	h := fnv.New64a()
	h.Write([]byte(day))
	rng := rand.New(rand.NewPCG(h.Sum64(), 42))
	currencies := []string{"USD", "EUR", "GBP"}
	statuses := []string{"paid", "paid", "paid", "refunded", "test"}
	n := 20 + rng.IntN(20)
	out := make([]Order, n)
	for i := range out {
		out[i] = Order{
			ID:       fmt.Sprintf("%s-%03d", day, i),
			Customer: fmt.Sprintf("c%02d", rng.IntN(30)),
			Amount:   math.Round(rng.Float64()*20000) / 100,
			Currency: currencies[rng.IntN(len(currencies))],
			Status:   statuses[rng.IntN(len(statuses))],
		}
	}
	flowstone.AddMetadata(ctx, "orders", n)
	return out, nil
}

// CleanOrders keeps the paid orders and normalises their fields.
//
//flowstone:asset partitions=Days
func CleanOrders(ctx context.Context, rawOrders []Order) ([]Order, error) {
	var out []Order
	for _, o := range rawOrders {
		if o.Status != "paid" || o.Amount <= 0 {
			continue
		}
		o.Currency = strings.ToUpper(o.Currency)
		out = append(out, o)
	}
	flowstone.AddMetadata(ctx, "kept", len(out))
	return out, nil
}

// DailyRevenue sums the cleaned orders of one day in the run's currency.
//
//flowstone:asset partitions=Days retries=3 timeout=5m
func DailyRevenue(ctx context.Context, p flowstone.Partition, cleanOrders []Order, rates *FXClient, settings Settings) (Revenue, error) {
	cur := settings.Currency
	if cur == "" {
		cur = "USD"
	}
	rev := Revenue{Day: p, Currency: cur, Orders: len(cleanOrders)}
	for _, o := range cleanOrders {
		v, err := rates.Convert(o.Amount, o.Currency, cur)
		if err != nil {
			return Revenue{}, flowstone.Permanent(err)
		}
		rev.Total += v
	}
	rev.Total = math.Round(rev.Total*100) / 100
	return rev, nil
}

// PublishReport logs the day's revenue once it is computed; it has no value
// of its own.
//
//flowstone:asset partitions=Days deps=daily_revenue
func PublishReport(ctx context.Context, p flowstone.Partition) error {
	flowstone.Logger(ctx).Info("report published", "day", string(p))
	return nil
}
