package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// Staleness answers more assets than one statement holds, with inputs
// read across the statements' boundary: each asset of a chain reads its
// upstream's two partitions, every tenth upstream was materialized again
// at partition b since, every seventh asset's newest materializations
// were made by code version v0; nothing of another pipeline counts.
func TestStalenessOfManyAssets(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		migrated(t, db)
		var s Store
		const n = 2*staleArms + 20
		asset := func(i int) string { return fmt.Sprintf("a%03d", i) }
		var ms []NewMaterialization
		var reads []Read
		var asked []CodeVersion
		at := int64(1_000_000)
		add := func(pipeline string, i int, part, version, id string) {
			at++
			ms = append(ms, NewMaterialization{ID: id, Pipeline: pipeline, Asset: asset(i), Partition: part, Run: "r", Status: MatSucceeded,
				CodeVersion: version, Metadata: "{}", Attempts: 1, StartedAt: at, FinishedAt: at})
		}
		for i := range n {
			asked = append(asked, CodeVersion{Asset: asset(i), CodeVersion: "v1"})
			version := "v1"
			if i%7 == 3 {
				version = "v0"
			}
			for _, part := range []string{"a", "b"} {
				id := fmt.Sprintf("m%03d%s", i, part)
				add("p", i, part, version, id)
				if i > 0 {
					reads = append(reads, Read{Materialization: id, Lineage: Lineage{Asset: asset(i - 1), Partition: part, Materialization: fmt.Sprintf("m%03d%s", i-1, part)}})
				}
			}
			// The other pipeline: every asset materialized again later.
			add("other", i, "b", "v9", fmt.Sprintf("o%03d", i))
		}
		// a000 also read gone (no longer asked about) at a, materialized
		// again since, and kept (at b), not since.
		add("p", 999, "a", "v1", "g1")
		add("p", 999, "b", "v1", "k1")
		reads = append(reads, Read{Materialization: "m000a", Lineage: Lineage{Asset: asset(999), Partition: "a", Materialization: "g1"}},
			Read{Materialization: "m000b", Lineage: Lineage{Asset: asset(999), Partition: "b", Materialization: "k1"}})
		add("p", 999, "a", "v1", "g2")
		for i := 0; i < n; i += 10 {
			add("p", i, "b", "v1", fmt.Sprintf("m%03db2", i))
		}
		for from := 0; from < len(ms); from += 100 {
			if err := s.InsertMaterializations(ctx, db.q, ms[from:min(from+100, len(ms))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InsertReads(ctx, db.q, reads); err != nil {
			t.Fatal(err)
		}
		got, err := s.Staleness(ctx, db.q, db.postgres, "p", asked)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Materialized) != n {
			t.Fatalf("%d assets materialized, want %d", len(got.Materialized), n)
		}
		var wantOld []Version
		var wantNewer []NewerInput
		wantNewer = append(wantNewer, NewerInput{asset(0), "a", asset(999), "a"})
		for i := range n {
			if i%7 == 3 {
				wantOld = append(wantOld, Version{asset(i), "a", "v0"})
				if i%10 != 0 { // else b's newest is a v1
					wantOld = append(wantOld, Version{asset(i), "b", "v0"})
				}
			}
			if i > 0 && (i-1)%10 == 0 {
				wantNewer = append(wantNewer, NewerInput{asset(i), "b", asset(i - 1), "b"})
			}
		}
		cmpV := func(a, b Version) int { return cmpStrings(a.Asset+a.Partition, b.Asset+b.Partition) }
		cmpN := func(a, b NewerInput) int { return cmpStrings(a.Asset+a.Partition, b.Asset+b.Partition) }
		slices.SortFunc(got.Old, cmpV)
		slices.SortFunc(got.Newer, cmpN)
		if !slices.Equal(got.Old, wantOld) {
			t.Errorf("old versions:\n%v\nwant\n%v", got.Old, wantOld)
		}
		if !slices.Equal(got.Newer, wantNewer) {
			t.Errorf("newer inputs:\n%v\nwant\n%v", got.Newer, wantNewer)
		}
	})
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
