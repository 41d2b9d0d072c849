# FlowStone for Go. `make demo` and `make test` are all a fresh machine needs.
GO ?= go
PKGS := ./...

.PHONY: demo test check-fmt vet generate check-generate test-race bench fuzz chaos

# Generates the example pipeline, builds its command and materializes a day
# on the embedded SQLite default, in a throwaway database under .demo/; then
# lists the assets, draws the graph and says how to open the web page.
DEMO_DB := sqlite://$(CURDIR)/.demo/flowstone.db
demo:
	$(GO) run ./cmd/flowstonegen -C examples/orders
	rm -rf .demo && mkdir -p .demo
	$(GO) build -o .demo/orders ./examples/orders/cmd/orders
	.demo/orders --database "$(DEMO_DB)" materialize --partition 2024-01-02 --config '{"currency":"EUR"}'
	@echo
	.demo/orders --database "$(DEMO_DB)" assets
	@echo
	.demo/orders --database "$(DEMO_DB)" graph
	@echo
	@echo "See the graph, runs and partitions in your browser:"
	@echo "  .demo/orders --database \"$(DEMO_DB)\" serve"
	@echo "  then open http://127.0.0.1:8090/"

# Formatting, vet, generated files up to date, and the race-enabled suite.
test: check-fmt vet check-generate test-race

check-fmt:
	@out="$$(gofmt -l . | grep -v '^testdata/' || true)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

generate:
	$(GO) generate $(PKGS)

# go generate must leave the tree unchanged.
check-generate:
	$(GO) generate $(PKGS)
	@git diff --exit-code -- . ':!go.sum' || { echo "go generate changed files: commit the regenerated output"; exit 1; }
	@test -z "$$(git status --porcelain --untracked-files=all -- '*flowstone_gen.go')" || { echo "go generate produced untracked files"; git status --porcelain -- '*flowstone_gen.go'; exit 1; }

# -race also turns on checkptr, which checks every unsafe.Pointer
# conversion. In modernc's SQLite (C translated to Go, not ours) those
# checks took half the CPU of a SQLite test under -race (the SQLite run of
# the 25-item TestTwoHourlyScattersUnderADailyTarget: 5.1 CPU-s, 2.5 with
# them off there); our own packages keep them.
RACE_GCFLAGS ?= modernc.org/...=-d=checkptr=0
test-race:
	$(GO) test -race -gcflags='$(RACE_GCFLAGS)' -count=1 -timeout 30m $(PKGS)

# Benchmarks only (-run '^$', so no test runs): the generator's, and the
# engine against raw River on the same database (docs/benchmarks.md). The
# PostgreSQL half runs when FLOWSTONE_TEST_DATABASE_URL is set, and is
# skipped with a logged note otherwise. Repeat with BENCH_FLAGS='-benchtime 1x -count 3'.
BENCH_FLAGS ?= -benchtime 1x
bench:
	$(GO) test -run '^$$' -bench . $(BENCH_FLAGS) -timeout 60m $(PKGS)

fuzz:
	$(GO) test ./gen -run '^$$' -fuzz FuzzParseDirective -fuzztime 60s

# The chaos runs (docs/running.md, "Surviving crashes"), not part of `make
# test`: 20 SIGKILLs of worker processes during a 300-asset run, on
# PostgreSQL (three workers) and SQLite (one, restarted), with every
# setting at its default; the PostgreSQL run again with the database cut
# away now and then (through a proxy, the server itself untouched) between
# and during the kills; PostgreSQL cut away from materialize, status
# --follow and workers; and a private PostgreSQL server of the test's own
# (initdb from /usr/lib/postgresql/*/bin, another port; skipped without
# the server binaries) crashed with SIGKILL six times under three workers.
# Each run prints a "CHAOS |" table line. PostgreSQL needs
# FLOWSTONE_TEST_DATABASE_URL. Repeat with CHAOS_FLAGS='-count 3';
# FLOWSTONE_CHAOS_KILLS=0 measures the same runs undisturbed.
CHAOS_FLAGS ?= -count 1
chaos:
	FLOWSTONE_CHAOS=1 $(GO) test -p 1 -run '^TestChaos' -v $(CHAOS_FLAGS) -timeout 60m ./runtime ./runtime/cli
