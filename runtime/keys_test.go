package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// badKeys are keys no entry point accepts, on either database: PostgreSQL
// refuses NUL and invalid UTF-8 in text, and River's JSON job args would
// alter invalid UTF-8 on its way to the worker.
var badKeys = map[string]string{
	"NUL":           "acme\x00corp",
	"invalid UTF-8": "acme\xff",
	"newline":       "acme\ncorp",
	"10 KB":         strings.Repeat("k", 10<<10),
}

// keysPipeline has a daily, a static and a dynamic asset, and a sensor
// that requests runs with whatever key its cursor names.
func keysPipeline(sensorKey func() (flowstone.Partition, string)) *Pipeline {
	day := def("day", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	day.Partitions = flowstone.Daily("2024-01-01")
	region := def("region", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	region.Partitions = flowstone.Static("eu", "us")
	customer := def("customer", func(ctx context.Context, in *Inputs) (any, error) { return string(in.Partition()), nil })
	customer.Partitions = flowstone.Dynamic("customers")
	var sensors []SensorDef
	if sensorKey != nil {
		sensors = append(sensors, SensorDef{Name: "feed", Every: 100 * time.Millisecond, Targets: []string{"customer"},
			Run: func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error) {
				part, runKey := sensorKey()
				return flowstone.SensorResult{Requests: []flowstone.RunRequest{{Partition: part, RunKey: runKey}}, Cursor: "c"}, nil
			}})
	}
	return NewPipeline(PipelineDef{Name: "keys", Assets: []AssetDef{day, region, customer}, Sensors: sensors})
}

func wantInvalidKey(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, flowstone.ErrInvalidKey) {
		t.Errorf("%s: %v; want ErrInvalidKey", what, err)
		return
	}
	if len(err.Error()) > 400 {
		t.Errorf("%s: a %d-byte error; the key should be cut", what, len(err.Error()))
	}
}

func TestInvalidKeysAreRefusedAtEveryDoor(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		p := keysPipeline(nil)
		e := openEngine(t, db.config(t), Bind(p, nil))
		if err := e.AddPartitions(ctx, p, "customers", "acme"); err != nil {
			t.Fatal(err)
		}
		good, err := e.Materialize(ctx, p, Request{Targets: []string{"customer"}, Partition: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		waitRun(t, e, good.ID)
		for name, key := range badKeys {
			k := flowstone.Partition(key)
			wantInvalidKey(t, name+": AddPartitions", e.AddPartitions(ctx, p, "customers", k))
			wantInvalidKey(t, name+": RemovePartitions", e.RemovePartitions(ctx, p, "customers", k))
			for _, target := range []string{"day", "region", "customer"} {
				_, err := e.Materialize(ctx, p, Request{Targets: []string{target}, Partition: k})
				wantInvalidKey(t, name+": Materialize "+target, err)
				if !errors.Is(err, flowstone.ErrInvalidPartition) {
					t.Errorf("%s: Materialize %s: %v; want ErrInvalidPartition too", name, target, err)
				}
			}
			_, err := e.Materialize(ctx, p, Request{Targets: []string{"customer"}, Partition: "acme", RunKey: key})
			wantInvalidKey(t, name+": run key", err)
			_, err = e.Backfill(ctx, p, BackfillRequest{Targets: []string{"customer"}, Partitions: []flowstone.Partition{"acme", k}})
			wantInvalidKey(t, name+": backfill list", err)
			_, err = e.Backfill(ctx, p, BackfillRequest{Targets: []string{"day"}, From: "2024-01-01", To: k})
			wantInvalidKey(t, name+": backfill range", err)
			_, err = Load[string](ctx, e, "keys", "customer", k)
			wantInvalidKey(t, name+": Load", err)
			_, err = e.Logs(ctx, Ref{RunID: good.ID, Asset: "customer", Partition: k})
			wantInvalidKey(t, name+": Logs partition", err)
			_, err = e.Logs(ctx, Ref{RunID: key})
			wantInvalidKey(t, name+": Logs run", err)
			err = e.Approve(ctx, Ref{RunID: good.ID, Asset: "customer", Partition: k}, "me", "")
			wantInvalidKey(t, name+": Approve", err)
			_, err = e.Run(ctx, key)
			wantInvalidKey(t, name+": Run", err)
			wantInvalidKey(t, name+": Cancel", e.Cancel(ctx, key))
		}
		// Nothing was recorded: the set still holds acme alone.
		keys, err := e.DynamicPartitions(ctx, p, "customers")
		if err != nil || len(keys) != 1 || keys[0] != "acme" {
			t.Errorf("customers = %q, %v; want [acme]", keys, err)
		}
	})
}

func TestInvalidKeysFromASensorAreRecordedAsItsError(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		for name, key := range badKeys {
			t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
				for _, asRunKey := range []bool{false, true} {
					part, runKey := flowstone.Partition(key), "r"
					if asRunKey {
						part, runKey = "acme", key
					}
					p := keysPipeline(func() (flowstone.Partition, string) { return part, runKey })
					e := openEngine(t, db.config(t), Bind(p, nil))
					if err := e.AddPartitions(ctx, p, "customers", "acme"); err != nil {
						t.Fatal(err)
					}
					deadline := time.Now().Add(30 * time.Second)
					var st []SensorStatus
					for len(st) == 0 || st[0].Evaluations == 0 {
						if time.Now().After(deadline) {
							t.Fatal("the sensor was not evaluated in 30s")
						}
						time.Sleep(50 * time.Millisecond)
						var err error
						if st, err = e.Sensors(ctx, "keys"); err != nil {
							t.Fatal(err)
						}
					}
					if !strings.Contains(st[0].LastError, flowstone.ErrInvalidKey.Error()) || st[0].Runs != 0 {
						t.Errorf("run key %v: sensor %+v; want its error to say %q", asRunKey, st[0], flowstone.ErrInvalidKey)
					}
					if runs, _ := e.Runs(ctx, "keys", 10); len(runs) != 0 {
						t.Errorf("run key %v: %d runs started", asRunKey, len(runs))
					}
				}
			})
		}
	})
}
