package ingest

import (
	"context"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"

	"github.com/flowstone-go/flowstone"
)

// Hours partitions the raw events by hour, in UTC.
var Hours = flowstone.Hourly("2024-01-01T00")

// Days partitions the rollups by day, in UTC.
var Days = flowstone.Daily("2024-01-01")

// Event is one fake user event.
type Event struct {
	ID   string `json:"id"`
	User string `json:"user"`
	Kind string `json:"kind"`
}

// EventBatch is one hour's events.
type EventBatch struct {
	Hour   flowstone.Partition `json:"hour"`
	Events []Event             `json:"events"`
}

// Count is one day's tally.
type Count struct {
	Day    flowstone.Partition `json:"day"`
	Hours  int                 `json:"hours"`
	Events int                 `json:"events"`
	ByKind map[string]int      `json:"by_kind"`
}

// Total is the running total up to and including a day.
type Total struct {
	Through flowstone.Partition `json:"through"`
	Days    int                 `json:"days"`
	Events  int                 `json:"events"`
}

// kind is the fake kind of an hour's i-th event.
func kind(i int) string {
	switch i % 3 {
	case 0:
		return "view"
	case 1:
		return "click"
	}
	return "purchase"
}

// EventsIn is how many events hour has: between 10 and 59, from a hash of
// the key, so tests can work out any day's count.
func EventsIn(hour flowstone.Partition) int {
	h := fnv.New32a()
	h.Write([]byte(hour))
	return 10 + int(h.Sum32()%50)
}

// Events loads one hour of events.
//
//flowstone:asset partitions=Hours
func Events(ctx context.Context, p flowstone.Partition) (EventBatch, error) {
	n := EventsIn(p)
	b := EventBatch{Hour: p, Events: make([]Event, n)}
	for i := range n {
		b.Events[i] = Event{ID: fmt.Sprintf("%s-%03d", p, i), User: "u" + strconv.Itoa(i%7), Kind: kind(i)}
	}
	return b, nil
}

// DailyCounts rolls up one day's hours: every day on schedule, and, as
// hours arrive, again for their day (auto=eager).
//
//flowstone:asset partitions=Days schedule="@daily" fresh=6h auto=eager
func DailyCounts(ctx context.Context, p flowstone.Partition, events map[flowstone.Partition]EventBatch) (Count, error) {
	c := Count{Day: p, Hours: len(events), ByKind: map[string]int{}}
	for _, hour := range slices.Sorted(maps.Keys(events)) {
		for _, e := range events[hour].Events {
			c.Events++
			c.ByKind[e.Kind]++
		}
	}
	return c, nil
}

// RunningTotal adds the day's count to the total through the day before,
// whenever that count changes (auto=eager).
//
//flowstone:asset partitions=Days auto=eager
func RunningTotal(ctx context.Context, p flowstone.Partition, dailyCounts Count, runningTotal flowstone.Previous[Total]) (Total, error) {
	t := runningTotal.Value // the zero Total before the first day
	return Total{Through: p, Days: t.Days + 1, Events: t.Events + dailyCounts.Events}, nil
}

// Kinds partitions the event kinds' descriptions.
var Kinds = flowstone.Static("view", "click", "purchase")

// KindInfo describes an event kind. auto=missing materializes each kind
// once, and a kind added to Kinds when it appears.
//
//flowstone:asset partitions=Kinds auto=missing
func KindInfo(ctx context.Context, p flowstone.Partition) (string, error) {
	return map[flowstone.Partition]string{"view": "a page was shown", "click": "a link was followed", "purchase": "an order was paid"}[p], nil
}

// ArrivedDays asks for a run of daily_counts for each day whose marker file
// arrived since the cursor, once per file.
//
//flowstone:sensor every=1m targets=daily_counts
func ArrivedDays(ctx context.Context, cursor string, drop *DropDir) (flowstone.SensorResult, error) {
	seen, err := parseCursor(cursor)
	if err != nil {
		return flowstone.SensorResult{}, err
	}
	files, next := drop.Since(seen)
	res := flowstone.SensorResult{Cursor: strconv.Itoa(next)}
	for _, f := range files {
		day, err := Day(f)
		if err != nil {
			return flowstone.SensorResult{}, err
		}
		res.Requests = append(res.Requests, flowstone.RunRequest{RunKey: f, Partition: day})
	}
	return res, nil
}

// CompleteDay fails a day that did not roll up all its hours; it is
// blocking, so running_total does not add an incomplete day.
//
//flowstone:check asset=daily_counts blocking
func CompleteDay(ctx context.Context, dailyCounts Count) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{
		Passed:      dailyCounts.Hours == 24,
		Description: fmt.Sprintf("%d of 24 hours rolled up", dailyCounts.Hours),
		Metadata:    map[string]any{"hours": dailyCounts.Hours, "events": dailyCounts.Events},
	}, nil
}

// HasPurchases warns about a day without a purchase.
//
//flowstone:check asset=daily_counts severity=warn
func HasPurchases(ctx context.Context, dailyCounts Count) (flowstone.CheckResult, error) {
	n := dailyCounts.ByKind["purchase"]
	return flowstone.CheckResult{Passed: n > 0, Description: fmt.Sprintf("%d purchases", n), Metadata: map[string]any{"purchases": n}}, nil
}
