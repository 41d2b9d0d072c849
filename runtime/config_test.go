package runtime

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

type settings struct {
	Currency string `json:"currency"`
}

func configPipeline() *Pipeline {
	a := def("priced", func(ctx context.Context, in *Inputs) (any, error) {
		c, err := ConfigValue[settings](in)
		if err != nil {
			return nil, err
		}
		return "in " + c.Currency, nil
	})
	a.UsesConfig = true
	return NewPipeline(PipelineDef{Name: "cfg", Config: ConfigOf[settings](), Assets: []AssetDef{a}})
}

func TestConfigTravelsWithTheRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		cfg := db.config(t)
		p := configPipeline()

		// An enqueuing process records the run and leaves.
		enq := cfg
		enq.NoWorkers = true
		producer := openEngine(t, enq)
		run, err := producer.Materialize(ctx, p, Request{Config: settings{Currency: "EUR"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := producer.Close(ctx); err != nil {
			t.Fatal(err)
		}

		// Much later, a worker that never saw the request picks the job up.
		time.Sleep(1500 * time.Millisecond)
		worker := openEngine(t, cfg, Bind(p, nil))
		res := waitRun(t, worker, run.ID)
		if res.Status != RunSucceeded {
			t.Fatalf("run %s: %+v", res.Status, res.Assets)
		}
		v, err := Load[string](ctx, worker, "cfg", "priced", "")
		if err != nil || v != "in EUR" {
			t.Fatalf("priced = %q, %v", v, err)
		}

		// Another config is another input: not reused.
		run2, err := worker.Materialize(ctx, p, Request{Config: &settings{Currency: "USD"}})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, worker, run2.ID); res.Assets["priced"].Status != StatusSucceeded {
			t.Fatalf("USD run: %s", res.Assets["priced"].Status)
		}
	})
}

func TestBadConfigLeavesNoRun(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := configPipeline()
		e := openEngine(t, db.config(t), Bind(p, nil))
		if _, err := e.Materialize(ctx, p, Request{Config: struct{ Currency string }{"EUR"}}); !errors.Is(err, ErrBadConfig) {
			t.Errorf("wrong type: %v, want ErrBadConfig", err)
		}
		if _, err := e.Materialize(ctx, p, Request{}); !errors.Is(err, ErrMissingConfig) {
			t.Errorf("no config: %v, want ErrMissingConfig", err)
		}
		if runs, _ := e.Runs(ctx, "", 10); len(runs) != 0 {
			t.Errorf("a rejected request left %d runs", len(runs))
		}
	})
}

func TestConfigDecodesStrictly(t *testing.T) {
	t.Parallel()
	spec := ConfigOf[settings]()
	for _, bad := range []string{`{"curency":"EUR"}`, `{"currency":"EUR"} {}`, `{"currency":"EUR"}x`, `null`, ` null `, `[]`, ``} {
		if _, err := spec.Decode([]byte(bad)); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Decode(%q) = %v, want ErrBadConfig", bad, err)
		}
	}
	v, err := spec.Decode([]byte(" {\"currency\":\"EUR\"}\n"))
	if err != nil || v != (settings{Currency: "EUR"}) {
		t.Errorf("Decode = %v, %v", v, err)
	}
}

func TestDatabaseForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, dialect, target string
	}{
		{"", "sqlite", "flowstone.db"},
		{"./flowstone.db", "sqlite", "./flowstone.db"},
		{"/var/lib/app/flowstone.db", "sqlite", "/var/lib/app/flowstone.db"},
		{"data/fs.db", "sqlite", "data/fs.db"},
		{"sqlite://data/fs.db", "sqlite", "data/fs.db"},
		{"sqlite::memory:", "sqlite", ":memory:"},
		{"postgres://u@h/db", "postgres", "postgres://u@h/db"},
	} {
		got, err := parseDatabase(tc.in)
		if err != nil || got.dialect != tc.dialect || got.target != tc.target {
			t.Errorf("parseDatabase(%q) = %+v, %v; want %s %s", tc.in, got, err, tc.dialect, tc.target)
		}
	}
	for _, bad := range []string{"mysql://u@h/db", "sqlite:data.db", "sqlite://", "sqlite://a.db?mode=ro"} {
		if _, err := parseDatabase(bad); err == nil {
			t.Errorf("parseDatabase(%q) accepted", bad)
		}
	}
}

// TestWorkerTuning: Concurrency, QueueConcurrency, PollInterval and
// FetchCooldown become River's settings, with fast defaults; values River
// cannot use are refused before anything is opened.
func TestWorkerTuning(t *testing.T) {
	t.Parallel()
	heavy := def("heavy", noop)
	heavy.Queue = "heavy"
	p := NewPipeline(PipelineDef{Name: "tune", Assets: []AssetDef{def("a", noop), heavy}})
	rcfg := func(c Config, dialect string) (int, int, time.Duration, time.Duration) {
		e := &Engine{cfg: c, log: slog.New(slog.DiscardHandler), bindings: map[string]Binding{}}
		if err := e.addBindings([]Binding{Bind(p, nil)}); err != nil {
			t.Fatal(err)
		}
		r := e.riverConfig(dialect)
		return r.Queues["default"].MaxWorkers, r.Queues["heavy"].MaxWorkers, r.FetchPollInterval, r.FetchCooldown
	}
	type want struct {
		def, heavy     int
		poll, cooldown time.Duration
	}
	for _, c := range []struct {
		name    string
		cfg     Config
		dialect string
		want    want
	}{
		{"sqlite defaults", Config{}, "sqlite", want{4, 4, 50 * time.Millisecond, SQLiteFetchCooldown}},
		{"postgres defaults", Config{}, "postgres", want{10, 10, time.Second, DefaultFetchCooldown}},
		{"cooldown at most the poll", Config{PollInterval: 2 * time.Millisecond}, "postgres", want{10, 10, 2 * time.Millisecond, 2 * time.Millisecond}},
		{"all set", Config{Concurrency: 100, QueueConcurrency: map[string]int{"heavy": 2}, PollInterval: 10 * time.Millisecond,
			FetchCooldown: 2 * time.Millisecond}, "sqlite", want{100, 2, 10 * time.Millisecond, 2 * time.Millisecond}},
	} {
		d, h, poll, cool := rcfg(c.cfg, c.dialect)
		if got := (want{d, h, poll, cool}); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, bad := range []Config{{FetchCooldown: 100 * time.Microsecond}, {Concurrency: -1}, {PollInterval: -time.Second},
		{QueueConcurrency: map[string]int{"heavy": 0}}} {
		bad.Database = "sqlite://" + t.TempDir() + "/never.db"
		if _, err := Open(context.Background(), bad, Bind(p, nil)); !errors.Is(err, ErrInvalidTuning) {
			t.Errorf("Open(%+v): got %v, want ErrInvalidTuning", bad, err)
		}
	}
}
