package flowstone_test

import (
	"errors"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

func TestHourlyKeysAcrossDST(t *testing.T) {
	t.Parallel()
	hours := flowstone.Hourly("2024-01-01T00", flowstone.InLocation("Europe/Berlin")).(flowstone.TimeWindowSet)
	count := func(day string) (n int, longest time.Duration) {
		k := flowstone.Partition(day + "T00")
		for ; string(k)[:10] == day; k, _ = hours.Next(k) {
			start, end, err := hours.Window(k)
			if err != nil {
				t.Fatal(err)
			}
			n, longest = n+1, max(longest, end.Sub(start))
		}
		return n, longest
	}
	for day, want := range map[string]struct {
		keys    int
		longest time.Duration
	}{
		"2024-03-31": {23, time.Hour},     // spring forward: no 02
		"2024-10-27": {24, 2 * time.Hour}, // fall back: 02 covers both
		"2024-06-01": {24, time.Hour},
	} {
		if n, l := count(day); n != want.keys || l != want.longest {
			t.Errorf("%s: %d keys, longest window %s; want %d, %s", day, n, l, want.keys, want.longest)
		}
	}
	if p, ok := hours.Previous("2024-10-27T03"); !ok || p != "2024-10-27T02" {
		t.Errorf("previous of T03 = %q", p)
	}
	if err := hours.Validate("2024-03-31T02"); err == nil {
		t.Error("2024-03-31T02 does not exist in Berlin but validated") // skipped by DST
	}
}

func TestSetsValidateWithExamples(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		set flowstone.PartitionSet
		bad flowstone.Partition
	}{
		{flowstone.Daily("2024-01-01"), "2024-1-2"},
		{flowstone.Daily("2024-01-01", flowstone.End("2024-02-01")), "2024-02-01"},
		{flowstone.Weekly("2024-01-01"), "2024-01-02"},
		{flowstone.Monthly("2024-01-01"), "2024-01-15"},
		{flowstone.Static("eu", "us"), "apac"},
		{flowstone.Multi(flowstone.Daily("2024-01-01"), flowstone.Static("eu", "us")), "2024-01-02"},
	} {
		err := c.set.Validate(c.bad)
		if !errors.Is(err, flowstone.ErrInvalidPartition) {
			t.Errorf("%s %q: %v", c.set.Kind(), c.bad, err)
		}
	}
	if err := flowstone.Multi(flowstone.Daily("2024-01-01"), flowstone.Static("eu", "us")).Validate("2024-01-02|eu"); err != nil {
		t.Error(err)
	}
	if err := flowstone.Daily("2024-13-01").Err(); err == nil {
		t.Error("a malformed start is not reported")
	}
}

func TestTimeSetsEndAtTheNewestCompleteWindow(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	day := func(d int) flowstone.Partition { return flowstone.Partition(now.AddDate(0, 0, d).Format("2006-01-02")) }
	hour := func(h int) flowstone.Partition {
		return flowstone.Partition(now.Add(time.Duration(h) * time.Hour).Format("2006-01-02T15"))
	}
	days := flowstone.Daily("2024-01-01").(flowstone.TimeWindowSet)
	ahead := flowstone.Daily("2024-01-01", flowstone.EndOffset(1)).(flowstone.TimeWindowSet)
	hours := flowstone.Hourly("2024-01-01T00").(flowstone.TimeWindowSet)
	for _, c := range []struct {
		name string
		set  flowstone.TimeWindowSet
		key  flowstone.Partition
		ok   bool
	}{
		{"yesterday", days, day(-1), true},
		{"today, still in progress", days, day(0), false},
		{"far future", days, "2099-01-01", false},
		{"today with EndOffset(1)", ahead, day(0), true},
		{"tomorrow with EndOffset(1)", ahead, day(1), false},
		{"previous hour", hours, hour(-1), true},
		{"this hour", hours, hour(0), false},
	} {
		err := c.set.Validate(c.key)
		if c.ok && err != nil {
			t.Errorf("%s: %q refused: %v", c.name, c.key, err)
		}
		if !c.ok && (!errors.Is(err, flowstone.ErrFuturePartition) || !errors.Is(err, flowstone.ErrInvalidPartition)) {
			t.Errorf("%s: %q: %v; want ErrFuturePartition", c.name, c.key, err)
		}
	}
	if last, ok := days.Last(now); !ok || last != day(-1) {
		t.Errorf("Last = %q, %v; want yesterday %q", last, ok, day(-1))
	}
	if last, ok := ahead.Last(now); !ok || last != day(0) {
		t.Errorf("Last with EndOffset(1) = %q, %v; want today %q", last, ok, day(0))
	}
	if _, ok := days.Next(day(-1)); ok {
		t.Error("Next went past the newest complete window")
	}
	err := days.Validate("2099-01-01")
	want := `invalid partition "2099-01-01": its window has not ended yet: the daily set's newest partition is "` + string(day(-1)) + `" (flowstone.EndOffset(n) reaches n windows further)`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
}
