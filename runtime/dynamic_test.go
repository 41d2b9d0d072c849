package runtime

import (
	"context"
	"errors"
	"fmt"
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
		if err := e.AddPartitions(ctx, p, "customers", "acme", "globex", "acme"); err != nil {
			t.Fatal(err)
		}
		if err := e.AddPartitions(ctx, p, "customers", "a|b"); err == nil {
			t.Fatal("a key with | accepted")
		}
		run, err := e.Materialize(ctx, p, Request{Partition: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}
		if err := e.RemovePartitions(ctx, p, "customers", "acme"); err != nil {
			t.Fatal(err)
		}
		keys, _ := e.DynamicPartitions(ctx, p, "customers")
		if len(keys) != 1 || keys[0] != "globex" {
			t.Fatalf("keys = %v", keys)
		}
		if _, err := e.Materialize(ctx, p, Request{Partition: "acme"}); !strings.Contains(err.Error(), "e.g. globex") {
			t.Fatalf("after removing: %v", err)
		}
	})
}

// dynPipeline is a pipeline called name with one asset in the dynamic set
// customers.
func dynPipeline(name string, opts ...flowstone.DynamicOption) *Pipeline {
	a := def("per_customer", func(ctx context.Context, in *Inputs) (any, error) { return name + " " + string(in.Partition()), nil })
	a.Partitions = flowstone.Dynamic("customers", opts...)
	return NewPipeline(PipelineDef{Name: name, Assets: []AssetDef{a}})
}

func TestDynamicSetsAreScopedToTheirPipeline(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		sales, support := dynPipeline("sales"), dynPipeline("support")
		left, right := dynPipeline("left", flowstone.Shared()), dynPipeline("right", flowstone.Shared())
		e := openEngine(t, db.config(t), Bind(sales, nil), Bind(support, nil), Bind(left, nil), Bind(right, nil))

		if err := e.AddPartitions(ctx, sales, "customers", "acme", "globex"); err != nil {
			t.Fatal(err)
		}
		if err := e.AddPartitions(ctx, support, "customers", "initech"); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[*Pipeline]string{sales: "acme globex", support: "initech", left: "", right: ""} {
			keys, err := e.DynamicPartitions(ctx, p, "customers")
			if got := strings.Trim(fmt.Sprint(keys), "[]"); err != nil || got != want {
				t.Errorf("%s's customers = %q, %v; want %q", p.Name(), got, err, want)
			}
		}
		if _, err := e.Materialize(ctx, support, Request{Partition: "acme"}); !errors.Is(err, flowstone.ErrInvalidPartition) ||
			!strings.Contains(err.Error(), `"acme": not in dynamic set customers of pipeline support (e.g. initech)`) {
			t.Errorf("support at sales' key: %v", err)
		}
		run, err := e.Materialize(ctx, sales, Request{Partition: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if res := waitRun(t, e, run.ID); res.Status != RunSucceeded {
			t.Fatalf("run %s", res.Status)
		}

		// Declared shared, the keys are common.
		if err := e.AddPartitions(ctx, left, "customers", "umbrella"); err != nil {
			t.Fatal(err)
		}
		if keys, _ := e.DynamicPartitions(ctx, right, "customers"); len(keys) != 1 || keys[0] != "umbrella" {
			t.Errorf("right's shared customers = %v", keys)
		}
		if _, err := e.Materialize(ctx, right, Request{Partition: "umbrella"}); err != nil {
			t.Errorf("right at a shared key: %v", err)
		}
		if keys, _ := e.DynamicPartitions(ctx, sales, "customers"); len(keys) != 2 {
			t.Errorf("sales sees shared keys: %v", keys)
		}

		if err := e.AddPartitions(ctx, sales, "custmers", "x"); !errors.Is(err, ErrUnknownSet) || !strings.Contains(err.Error(), "its dynamic sets: customers") {
			t.Errorf("unknown set: %v", err)
		}
	})
}

func TestDynamicSetSharedAndNotRefused(t *testing.T) {
	t.Parallel()
	a, b := dynPipeline("a").Assets()[0], dynPipeline("b", flowstone.Shared()).Assets()[0]
	b.Key = "other"
	p := NewPipeline(PipelineDef{Name: "mixed", Assets: []AssetDef{*a, *b}})
	_, err := Open(context.Background(), Config{Database: "sqlite::memory:"}, Bind(p, nil))
	if err == nil || !strings.Contains(err.Error(), "dynamic set customers is declared both Shared and not") {
		t.Fatalf("err = %v", err)
	}
}
