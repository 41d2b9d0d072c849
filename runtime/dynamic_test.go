package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone"
)

func TestDynamicPartitions(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		a := def("per_customer", func(ctx context.Context, in *Inputs) (any, error) { return "hi " + string(in.Partition()), nil })
		a.Partitions = flowstone.Dynamic("customers")
		p := NewPipeline(PipelineDef{Name: "dyn", Assets: []AssetDef{a}})
		e := openEngine(t, db.config(t), Bind(p, nil))
		if _, err := e.Materialize(ctx, p, Request{Partition: "acme"}); !errors.Is(err, flowstone.ErrInvalidPartition) || !strings.Contains(err.Error(), "none yet") {
			t.Fatalf("before adding: %v", err)
		}
		if err := e.AddPartitions(ctx, "customers", "acme", "globex", "acme"); err != nil {
			t.Fatal(err)
		}
		if err := e.AddPartitions(ctx, "customers", "a|b"); err == nil {
			t.Fatal("a key with | accepted")
		}
		run, err := e.Materialize(ctx, p, Request{Partition: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
		if err := e.RemovePartitions(ctx, "customers", "acme"); err != nil {
			t.Fatal(err)
		}
		keys, _ := e.DynamicPartitions(ctx, "customers")
		if len(keys) != 1 || keys[0] != "globex" {
			t.Fatalf("keys = %v", keys)
		}
		if _, err := e.Materialize(ctx, p, Request{Partition: "acme"}); !strings.Contains(err.Error(), "e.g. globex") {
			t.Fatalf("after removing: %v", err)
		}
	})
}
