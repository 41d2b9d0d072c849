package scatter

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// nopDB takes the barrier and items Start stores and forgets them: Start's
// launches are a decision of the plan alone.
type nopDB struct{ DB }

func (nopDB) Exec(context.Context, string, ...any) (int64, error) { return 0, nil }

func start(t *testing.T, p Plan, n int) []Launch {
	t.Helper()
	items := make([]json.RawMessage, n)
	for i := range items {
		items[i] = json.RawMessage(`1`)
	}
	o := Orchestrator{Plan: p}
	got, err := o.Start(context.Background(), nopDB{}, Ref{Run: "r", Asset: "a"}, items, nil, time.Unix(1000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// A rate spaces the batches' launches: 4 batches of 2 at 10 items/s are
// launched 200ms apart, the last 600ms after the first. The launch times
// are what the rate decides; when each batch then starts depends on the
// queue and the machine.
func TestRateSpacesLaunches(t *testing.T) {
	launches := start(t, Plan{Batch: 2, PerSecond: 10}, 8)
	if len(launches) != 4 {
		t.Fatalf("%d launches; want 4", len(launches))
	}
	t0 := time.Unix(1000, 0)
	for i, l := range launches {
		if want := t0.Add(time.Duration(i) * 200 * time.Millisecond); l.Batch != i || !l.At.Equal(want) {
			t.Errorf("launch %d: batch %d at +%s; want batch %d at +%s", i, l.Batch, l.At.Sub(t0), i, want.Sub(t0))
		}
	}
}

// Without a rate every batch launches at once; a concurrency bound
// launches only its window.
func TestLaunchesWithoutRateAndWithinWindow(t *testing.T) {
	for _, l := range start(t, Plan{Batch: 2}, 8) {
		if !l.At.Equal(time.Unix(1000, 0)) {
			t.Errorf("batch %d at %s; want all at once", l.Batch, l.At)
		}
	}
	if got := start(t, Plan{Batch: 2, MaxConcurrent: 4}, 8); len(got) != 2 {
		t.Errorf("%d launches with at most 4 items in flight in batches of 2; want 2", len(got))
	}
}

// Item keys go through flowstone.ValidateKey: a key with a control
// character, invalid UTF-8 or over MaxKeyBytes fails Start, naming the
// item, before anything is stored.
func TestStartRejectsInvalidItemKeys(t *testing.T) {
	items := []json.RawMessage{json.RawMessage(`1`), json.RawMessage(`2`)}
	for _, bad := range []string{"a\nb", "\xff", strings.Repeat("k", flowstone.MaxKeyBytes+1)} {
		_, err := Orchestrator{Plan: Plan{Batch: 1}}.Start(context.Background(), failDB{t}, Ref{Run: "r", Asset: "a"},
			items, []string{"ok", bad}, time.Unix(1000, 0))
		if !errors.Is(err, flowstone.ErrInvalidKey) || !strings.Contains(err.Error(), "item 1: ") ||
			!strings.Contains(err.Error(), "scatter item key") {
			t.Errorf("key %q: Start = %v; want item 1's invalid key", bad, err)
		}
	}
	if err := ValidateKeys([]string{"a@x", "ünïcode", ""}); err != nil {
		t.Errorf("valid keys: %v", err)
	}
}

// failDB fails the test on any statement.
type failDB struct{ t *testing.T }

func (f failDB) Exec(context.Context, string, ...any) (int64, error) {
	f.t.Error("statement run before the keys were checked")
	return 0, nil
}
func (f failDB) Query(context.Context, string, ...any) (Rows, error) {
	f.t.Error("query run before the keys were checked")
	return nil, errors.New("no")
}
func (f failDB) QueryRow(context.Context, string, ...any) Row {
	f.t.Error("query run before the keys were checked")
	return nil
}
