package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPageMatchesTheCommandTree fails when docs/cli.md's reference is not
// what the command tree says: run go generate ./runtime/cli.
func TestPageMatchesTheCommandTree(t *testing.T) {
	t.Parallel()
	page, err := os.ReadFile("../../../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	want, err := render(context.Background(), string(page))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, string(page)); diff != "" {
		t.Errorf("docs/cli.md is stale; run go generate ./runtime/cli (-want +got):\n%s", diff)
	}
	// Every command and global flag is in it.
	for _, name := range []string{"materialize", "status", "assets", "graph", "worker", "migrate", "cancel", "gates", "approve",
		"reject", "gate-link", "serve-gates", "backfill", "backfill status", "backfill cancel", "partitions", "dynamic", "dynamic add",
		"sensors"} {
		if !strings.Contains(want, "\n### "+name+"\n") {
			t.Errorf("no section for %s", name)
		}
	}
	for _, flag := range []string{"--database", "--schema", "--pipeline", "--log-level", "--secret"} {
		if !strings.Contains(want, "`"+flag+" ") {
			t.Errorf("no row for %s", flag)
		}
	}
}
