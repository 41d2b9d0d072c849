package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
)

// NewestCheckResults reads each asset's newest results, at most limit per
// asset, in the order the assets are given and newest first, for more
// assets than one statement holds, and nothing of another pipeline.
func TestNewestCheckResultsOfManyAssets(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		q := db.q
		const n = maxArms + 50
		insert := func(pipeline, asset, mat, name string) {
			t.Helper()
			if _, err := s.InsertCheckResult(ctx, q, CheckResult{Materialization: mat, Name: name, Pipeline: pipeline, Asset: asset,
				Passed: true, Severity: "error", Metadata: "{}"}); err != nil {
				t.Fatal(err)
			}
		}
		// Asset i has i%4 materializations, each checked by "rows"; the
		// other pipeline has results for every asset name.
		var assets []string
		for i := range n {
			asset := fmt.Sprintf("a%03d", i)
			assets = append(assets, asset)
			for m := range i % 4 {
				insert("p", asset, fmt.Sprintf("%s-m%d", asset, m), "rows")
			}
			insert("other", asset, asset+"-other", "rows")
		}
		// Given in reverse, to see the order kept.
		slices.Reverse(assets)
		got, err := s.NewestCheckResults(ctx, q, "p", assets, 2)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, asset := range assets {
			var i int
			fmt.Sscanf(asset, "a%03d", &i)
			for m := i%4 - 1; m >= max(0, i%4-2); m-- {
				want = append(want, fmt.Sprintf("%s-m%d", asset, m))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d results, want %d", len(got), len(want))
		}
		for i, r := range got {
			if r.Materialization != want[i] || r.Pipeline != "p" {
				t.Fatalf("result %d: %s of %s, want %s of p", i, r.Materialization, r.Pipeline, want[i])
			}
		}
	})
}

// AssetCheckResults of every asset lists the pipeline's newest results
// whichever asset they are about, newest first, and nothing of another
// pipeline.
func TestAssetCheckResultsOfEveryAsset(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		var order []string
		for i := range 60 {
			mat := fmt.Sprintf("m%02d", i)
			asset := fmt.Sprintf("a%d", i*7%5)
			if _, err := s.InsertCheckResult(ctx, db.q, CheckResult{Materialization: mat, Name: "rows", Pipeline: "p", Asset: asset,
				Passed: true, Severity: "error", Metadata: "{}"}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.InsertCheckResult(ctx, db.q, CheckResult{Materialization: mat, Name: "rows", Pipeline: "other", Asset: asset,
				Passed: true, Severity: "error", Metadata: "{}"}); err != nil {
				t.Fatal(err)
			}
			order = append(order, mat)
			time.Sleep(10 * time.Microsecond) // distinct creation times
		}
		got, err := s.AssetCheckResults(ctx, db.q, "p", "", 12)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			if r.Pipeline != "p" {
				t.Fatalf("result of pipeline %s", r.Pipeline)
			}
			ids = append(ids, r.Materialization)
		}
		want := slices.Clone(order[len(order)-12:])
		slices.Reverse(want)
		if !slices.Equal(ids, want) {
			t.Fatalf("newest 12: %v, want %v", ids, want)
		}
	})
}
