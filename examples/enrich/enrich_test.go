package enrich_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/examples/enrich"
	"github.com/flowstone-go/flowstone/flowstonetest"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/scatter"
)

// expected works out from the records themselves which the CRM fails for
// good and which it fails once.
func expected(t *testing.T) (records []enrich.Record, permanent, flaky []string) {
	t.Helper()
	records, err := enrich.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		switch {
		case strings.HasSuffix(r.Email, "@"+enrich.UnknownDomain):
			permanent = append(permanent, r.Email)
		case enrich.Flaky(r.Email):
			flaky = append(flaky, r.Email)
		}
	}
	return records, permanent, flaky
}

func TestRecordsAreDeterministicAndKeyedByEmail(t *testing.T) {
	t.Parallel()
	a, permanent, flaky := expected(t)
	b, _, _ := expected(t)
	if !slices.Equal(a, b) || len(a) != enrich.RecordCount {
		t.Fatalf("two calls gave %d and %d records, or different ones", len(a), len(b))
	}
	seen := map[string]bool{}
	for _, r := range a {
		if seen[r.ScatterKey()] {
			t.Fatalf("duplicate scatter key %s", r.ScatterKey())
		}
		seen[r.ScatterKey()] = true
	}
	// Some of each failure, the permanent ones under the 2% threshold.
	if len(permanent) != 31 || len(flaky) == 0 || float64(len(permanent))/float64(len(a)) >= 0.02 {
		t.Fatalf("%d permanent and %d flaky of %d records", len(permanent), len(flaky), len(a))
	}
}

func TestCRMFailsFlakyEmailsOnceAndUnknownDomainsForGood(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, permanent, flaky := expected(t)
	crm := enrich.NewCRM()
	crm.Latency = 0
	if _, err := crm.Lookup(ctx, flaky[0]); !errors.Is(err, enrich.ErrUnavailable) {
		t.Fatalf("first lookup of %s: %v, want ErrUnavailable", flaky[0], err)
	}
	if _, err := crm.Lookup(ctx, flaky[0]); err != nil {
		t.Fatalf("second lookup of %s: %v", flaky[0], err)
	}
	for range 2 {
		if _, err := crm.Lookup(ctx, permanent[0]); !errors.Is(err, enrich.ErrNoAccount) {
			t.Fatalf("lookup of %s: %v, want ErrNoAccount", permanent[0], err)
		}
	}
}

func TestRunSucceedsPartially(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx := t.Context()
		records, permanent, flaky := expected(t)
		crm := enrich.NewCRM()
		crm.Latency = 0
		res := flowstonetest.Materialize(t, enrich.Pipeline(), enrich.Resources{Crm: crm}, db)
		e := res.Engine()
		// Partial: the permanent failures (about 1%) stay under the 2%
		// threshold; the flaky ones succeed on their retry.
		en := res.Assets[enrich.AssetEnriched]
		if res.Status != runtime.RunSucceeded || en.Status != runtime.StatusSucceeded ||
			en.Error != "partial: 31 of 3000 items failed" {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		for _, k := range []string{enrich.AssetSegments, enrich.AssetQuality} {
			if res.Assets[k].Status != runtime.StatusSucceeded {
				t.Fatalf("%s: %+v", k, res.Assets[k])
			}
		}
		successes := len(records) - len(permanent)

		// segments saw exactly the successes.
		segs, err := enrich.LoadSegments(ctx, e, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range segs {
			n += s.Customers
		}
		if n != successes || len(segs) != 3 {
			t.Fatalf("segments count %d customers in %d tiers; want %d in 3", n, len(segs), successes)
		}

		// enriched, as dependents see it: the successes in source order,
		// the flaky records among them.
		got, err := enrich.LoadEnriched(ctx, e, "")
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, r := range records {
			if !slices.Contains(permanent, r.Email) {
				want = append(want, r.Email)
			}
		}
		emails := make([]string, len(got))
		for i, g := range got {
			emails[i] = g.Email
		}
		if !slices.Equal(emails, want) {
			t.Fatalf("enriched holds %d emails, not the %d successes in source order", len(emails), len(want))
		}
		if !slices.Contains(emails, flaky[0]) {
			t.Fatalf("flaky %s did not succeed on its retry", flaky[0])
		}

		// quality lists exactly the permanent failures, with why.
		q, err := enrich.LoadQuality(ctx, e, "")
		if err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, f := range q.Failures {
			failed = append(failed, f.Email)
			if !strings.Contains(f.Error, "no CRM account for domain "+enrich.UnknownDomain) {
				t.Errorf("failure of %s: %q", f.Email, f.Error)
			}
		}
		if q.Total != len(records) || q.Enriched != successes || !slices.Equal(failed, permanent) {
			t.Fatalf("quality: total %d, enriched %d, failures %v; want %d, %d, %v", q.Total, q.Enriched, failed, len(records), successes, permanent)
		}

		// Progress, as status shows it.
		p, err := e.ScatterProgress(ctx, runtime.Ref{RunID: res.ID, Asset: enrich.AssetEnriched})
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != len(records) || p.Done != len(records) || p.Failed != len(permanent) || p.Status != "completed" {
			t.Fatalf("progress = %+v; want %d done, %d failed, completed", p, len(records), len(permanent))
		}
		if _, err := e.ScatterProgress(ctx, runtime.Ref{RunID: res.ID, Asset: enrich.AssetSegments}); !errors.Is(err, runtime.ErrNotMaterialized) {
			t.Fatalf("progress of segments, not a scatter: %v, want ErrNotMaterialized", err)
		}
	})
}

// A cancelled scatter should stop reporting itself running: its barrier
// is what ScatterProgress, status and dashboards read.
func TestCancelledScatterProgressIsNotRunning(t *testing.T) {
	t.Parallel()
	flowstonetest.EachDatabase(t, func(t *testing.T, db flowstonetest.Database) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		// 2ms lookups: the scatter takes a while.
		e := flowstonetest.Open(t, enrich.Pipeline(), enrich.Resources{Crm: enrich.NewCRM()}, db)
		run, err := e.Materialize(ctx, enrich.Pipeline(), runtime.Request{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			p, err := e.ScatterProgress(ctx, runtime.Ref{RunID: run.ID, Asset: enrich.AssetEnriched})
			if err == nil && p.Done > 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("the scatter never progressed")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := e.Cancel(ctx, run.ID); err != nil {
			t.Fatal(err)
		}
		res, err := e.Wait(ctx, run.ID)
		if err != nil || res.Status != runtime.RunCancelled {
			t.Fatalf("run %s, %v", res.Status, err)
		}
		time.Sleep(200 * time.Millisecond) // batches already running finish
		p, err := e.ScatterProgress(ctx, runtime.Ref{RunID: run.ID, Asset: enrich.AssetEnriched})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status == scatter.Running || p.FinishedAt.IsZero() {
			t.Fatalf("progress of a cancelled scatter = %+v; want it finished, not %q", p, scatter.Running)
		}
	})
}

// Each asset alone, with stubbed inputs and no database.
func TestAssetsWithStubbedInputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := enrich.Pipeline()
	crm := enrich.NewCRM()
	crm.Latency = 0
	records, permanent, _ := expected(t)

	// The scatter asset runs once per item.
	ok, err := flowstonetest.Call[enrich.Enriched](ctx, p, enrich.AssetEnriched, flowstonetest.Inputs{Item: records[0], Resources: enrich.Resources{Crm: crm}})
	if err != nil || ok.Email != records[0].Email {
		t.Fatalf("enriched(%s) = %+v, %v", records[0].Email, ok, err)
	}
	var bad enrich.Record
	for _, r := range records {
		if r.Email == permanent[0] {
			bad = r
		}
	}
	if _, err := flowstonetest.Call[enrich.Enriched](ctx, p, enrich.AssetEnriched, flowstonetest.Inputs{Item: bad, Resources: enrich.Resources{Crm: crm}}); !errors.Is(err, enrich.ErrNoAccount) {
		t.Fatalf("enriched(%s): %v, want ErrNoAccount", bad.Email, err)
	}

	// quality sees every item's outcome.
	q, err := flowstonetest.Call[enrich.QualityReport](ctx, p, enrich.AssetQuality, flowstonetest.Inputs{Values: map[string]any{
		enrich.AssetRecords: records[:2],
		enrich.AssetEnriched: []flowstone.Outcome[enrich.Enriched]{
			{Value: ok},
			{Err: errors.New("no CRM account")},
		},
	}})
	if err != nil || q.Total != 2 || q.Enriched != 1 || len(q.Failures) != 1 || q.Failures[0].Error != "no CRM account" {
		t.Fatalf("quality = %+v, %v", q, err)
	}

	// segments sees the successes.
	segs, err := flowstonetest.Call[[]enrich.Segment](ctx, p, enrich.AssetSegments, flowstonetest.Inputs{Values: map[string]any{
		enrich.AssetEnriched: []enrich.Enriched{ok},
	}})
	if err != nil || len(segs) != 1 || segs[0].Customers != 1 {
		t.Fatalf("segments = %+v, %v", segs, err)
	}
}
