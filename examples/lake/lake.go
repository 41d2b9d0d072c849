package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/blobio"
	"github.com/flowstone-go/flowstone/parquetio"
)

// Days partitions the tables by calendar day, in UTC.
var Days = flowstone.Daily("2024-01-01")

// Lake stores the tables as Parquet in the bucket named by LAKE_URL, one
// date=YYYY-MM-DD directory per day.
var Lake = parquetio.New(blobio.FromEnv("LAKE_URL", "mem://"), "date")

// Trip is one taxi trip: a row of the trips table.
type Trip struct {
	ID         int64
	Driver     string
	Start      time.Time
	Minutes    int32
	Miles      float64
	FareUSD    float64
	TipUSD     *float64 // nil when the rider gave none
	Zone       string
	Paid       bool
	Surcharges []string
}

// Rate is the day's exchange rate from USD.
type Rate struct {
	Currency string  `json:"currency"`
	PerUSD   float64 `json:"per_usd"`
}

// DriverTotal is one driver's day: a row of the driver_totals table.
type DriverTotal struct {
	Driver   string
	Trips    int64
	Miles    float64
	Fares    float64
	Tips     float64
	Currency string
}

// Receipt is what the API answered to the publication.
type Receipt struct {
	ID      string `json:"id"`
	Drivers int    `json:"drivers"`
}

// TripsPerDay is how many trips a day has.
const TripsPerDay = 500

// Trips is one day's trips, fake and deterministic.
//
//flowstone:asset partitions=Days io=Lake
func Trips(ctx context.Context, day flowstone.Partition) ([]Trip, error) {
	start, err := time.Parse(time.DateOnly, string(day))
	if err != nil {
		return nil, err
	}
	drivers := []string{"ana", "bo", "chen", "dara", "eli", "fay"}
	zones := []string{"airport", "downtown", "harbor", "uptown"}
	h := fnv.New64a()
	h.Write([]byte(day))
	seed := h.Sum64()
	out := make([]Trip, TripsPerDay)
	for i := range out {
		x := seed ^ uint64(i)*0x9e3779b97f4a7c15
		x ^= x >> 31
		miles := float64(5+x%200) / 10
		t := Trip{
			ID: int64(i + 1), Driver: drivers[x%uint64(len(drivers))], Start: start.Add(time.Duration(x%86400) * time.Second),
			Minutes: int32(5 + x%55), Miles: miles, FareUSD: math.Round((3+miles*2.5)*100) / 100,
			Zone: zones[(x>>8)%uint64(len(zones))], Paid: x%10 != 0, Surcharges: []string{},
		}
		if x%3 == 0 {
			tip := math.Round(t.FareUSD*15) / 100
			t.TipUSD = &tip
		}
		if t.Zone == "airport" {
			t.Surcharges = append(t.Surcharges, "airport")
		}
		out[i] = t
	}
	flowstone.AddMetadata(ctx, "rows", len(out))
	return out, nil
}

// FXRates asks the FX API for the day's rate.
//
//flowstone:asset partitions=Days retries=2
func FXRates(ctx context.Context, day flowstone.Partition, fx *FX) (Rate, error) {
	var r Rate
	resp, err := fx.Client.Get(ctx, fx.BaseURL+"/rates/"+string(day)+"?to="+fx.Currency)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return r, fmt.Errorf("fx api: %s: %s", resp.Status, body)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("fx api: %w", err)
	}
	return r, nil
}

// DriverTotals sums each driver's paid trips of the day in the rate's
// currency, reading the trips back from the lake.
//
//flowstone:asset partitions=Days io=Lake
func DriverTotals(ctx context.Context, trips []Trip, fxRates Rate) ([]DriverTotal, error) {
	by := map[string]*DriverTotal{}
	for _, t := range trips {
		if !t.Paid {
			continue
		}
		d := by[t.Driver]
		if d == nil {
			d = &DriverTotal{Driver: t.Driver, Currency: fxRates.Currency}
			by[t.Driver] = d
		}
		d.Trips++
		d.Miles += t.Miles
		d.Fares += t.FareUSD * fxRates.PerUSD
		if t.TipUSD != nil {
			d.Tips += *t.TipUSD * fxRates.PerUSD
		}
	}
	out := make([]DriverTotal, 0, len(by))
	for _, d := range by {
		d.Fares, d.Tips, d.Miles = math.Round(d.Fares*100)/100, math.Round(d.Tips*100)/100, math.Round(d.Miles*10)/10
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b DriverTotal) int { return strings.Compare(a.Driver, b.Driver) })
	return out, nil
}

// Published posts the day's totals to the API. The client adds an
// Idempotency-Key that is the same on every attempt of this asset in this
// run, so the API records the day once however often it is retried.
//
//flowstone:asset partitions=Days retries=2
func Published(ctx context.Context, day flowstone.Partition, driverTotals []DriverTotal, fx *FX) (Receipt, error) {
	var rec Receipt
	body, err := json.Marshal(map[string]any{"day": day, "totals": driverTotals})
	if err != nil {
		return rec, err
	}
	resp, err := fx.Client.Post(ctx, fx.BaseURL+"/reports", "application/json", body)
	if err != nil {
		return rec, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return rec, fmt.Errorf("publish: %s", resp.Status)
	}
	return rec, json.NewDecoder(resp.Body).Decode(&rec)
}
