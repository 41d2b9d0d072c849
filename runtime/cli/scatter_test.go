package cli_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/flowstone-go/flowstone/runtime/cli"
	"github.com/flowstone-go/flowstone/strategy"
)

// blockedScatter is numbers (1,200 ints) -> doubled, a scatter whose first
// 1,000 items run at once (every hundredth failing for good) and whose
// last 200 block until release is closed -> total.
func blockedScatter(release <-chan struct{}) *runtime.Pipeline {
	numbers := runtime.AssetDef{Key: "numbers", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			ns := make([]int, 1200)
			for i := range ns {
				ns[i] = i
			}
			return ns, nil
		}}
	doubled := runtime.AssetDef{Key: "doubled", Kind: "scatter", HasValue: true, CodeVersion: "v1",
		Strategy: strategy.Scatter{Source: "numbers", Batch: 100, MaxConcurrent: 200, FailureThreshold: 0.05},
		Deps:     []runtime.Dep{{Asset: "numbers", Kind: runtime.DepOrder}},
		Item:     runtime.ItemOf[int](),
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			n, err := runtime.Item[int](in)
			if err != nil {
				return nil, err
			}
			if n >= 1000 {
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			if n%100 == 7 {
				return nil, flowstone.Permanentf("item %d is unlucky", n)
			}
			return 2 * n, nil
		}}
	total := runtime.AssetDef{Key: "total", Kind: "standard", Strategy: strategy.Standard{}, HasValue: true, CodeVersion: "v1",
		Deps: []runtime.Dep{{Asset: "doubled", Kind: runtime.DepValue}},
		Run: func(ctx context.Context, in *runtime.Inputs) (any, error) {
			ds, err := runtime.Input[[]int](ctx, in, "doubled")
			return len(ds), err
		}}
	return runtime.NewPipeline(runtime.PipelineDef{Name: "blocked", Assets: []runtime.AssetDef{numbers, doubled, total}})
}

// waitFor polls out until it matches re, or fails the test after a minute.
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !re.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q in\n%s", re, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScatterProgressIsShownLiveAndInStatus(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		release := make(chan struct{})
		p := blockedScatter(release)
		app := cli.App{
			Name: "blocked",
			Bind: func(ctx context.Context) ([]runtime.Binding, error) {
				return []runtime.Binding{runtime.Bind(p, nil)}, nil
			},
			Configure: fast,
		}
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()

		// materialize follows the run while the last two batches block.
		var out, errOut syncBuffer
		done := make(chan int, 1)
		go func() { done <- cli.Main(ctx, app, args(db, "materialize"), &out, &errOut) }()
		progress := regexp.MustCompile(`(?m)^\s+\d\d:\d\d:\d\d\.\d{3}\s+doubled\s+waiting: 1,000/1,200 items done, 10 failed$`)
		waitFor(t, &out, progress)
		id := regexp.MustCompile(`run (run_[0-9a-f]+) started`).FindStringSubmatch(out.String())[1]

		// status shows the same progress under the run's table, from
		// another engine on the same database.
		r := invoke(ctx, app, args(db, "status", id)...)
		if r.code != 0 {
			t.Fatalf("status: %s", r)
		}
		wantLine(t, r, `doubled - waiting \d+ - -`)
		wantLine(t, r, `doubled waiting: 1,000/1,200 items done, 10 failed`)

		// status --follow shows it too, and follows the run to its end.
		var fout, ferr syncBuffer
		fdone := make(chan int, 1)
		go func() { fdone <- cli.Main(ctx, app, args(db, "status", "--follow", id), &fout, &ferr) }()
		waitFor(t, &fout, progress)

		close(release)
		released = true
		for name, c := range map[string]chan int{"materialize": done, "status --follow": fdone} {
			select {
			case code := <-c:
				if code != 0 {
					t.Fatalf("%s exited %d\n%s", name, code, out.String()+errOut.String()+fout.String()+ferr.String())
				}
			case <-ctx.Done():
				t.Fatalf("%s did not finish", name)
			}
		}
		for _, o := range []*syncBuffer{&out, &fout} {
			r := result{stdout: o.String()}
			wantLine(t, r, `doubled succeeded 1 \S+ partial: 12 of 1200 items failed`)
			wantLine(t, r, `total succeeded 1 \S+ -`)
		}

		// A finished run has no progress lines.
		r = invoke(ctx, app, args(db, "status", id)...)
		if regexp.MustCompile(`items done`).MatchString(r.stdout) {
			t.Fatalf("finished run still shows progress:\n%s", r)
		}
	})
}
