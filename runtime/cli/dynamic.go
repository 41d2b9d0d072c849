package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

func (s *session) dynamicCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "dynamic",
		Short: "Add, remove and list the keys of dynamic partition sets",
		Long: `Dynamic manages the keys of the pipeline's dynamic partition sets
(flowstone.Dynamic): they are stored in the database, and a run of an asset
in such a set is refused for a key that is not in it. SET is the name given
to flowstone.Dynamic.`,
	}
	edit := func(use, short, verb string, apply func(*runtime.Engine, context.Context, *runtime.Pipeline, string, ...flowstone.Partition) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " SET KEY...",
			Short: short,
			Args:  cobra.MinimumNArgs(2),
			RunE: run(func(c *cobra.Command, args []string) error {
				ctx := c.Context()
				eng, p, set, err := s.openDynamic(ctx, args[0], false)
				if err != nil {
					return err
				}
				defer closeEngine(ctx, eng, closeTimeout)
				keys := make([]flowstone.Partition, len(args)-1)
				for i, k := range args[1:] {
					keys[i] = flowstone.Partition(k)
					if err := flowstone.Dynamic(set).Validate(keys[i]); err != nil {
						return &exitError{code: ExitUsage, err: err}
					}
				}
				if err := apply(eng, ctx, p, set, keys...); err != nil {
					return err
				}
				all, err := eng.DynamicPartitions(ctx, p, set)
				if err != nil {
					return err
				}
				fmt.Fprintf(s.stdout, "%s %d key%s: dynamic set %s has %d key%s\n", verb, len(keys), plural(len(keys) == 1, "", "s"), set, len(all), plural(len(all) == 1, "", "s"))
				return nil
			}),
		}
	}
	list := &cobra.Command{
		Use:   "list SET",
		Short: "List a dynamic set's keys",
		Args:  cobra.ExactArgs(1),
		RunE: run(func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			eng, p, set, err := s.openDynamic(ctx, args[0], true)
			if err != nil {
				return err
			}
			defer closeEngine(ctx, eng, closeTimeout)
			keys, err := eng.DynamicPartitions(ctx, p, set)
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				fmt.Fprintf(s.stderr, "dynamic set %s has no keys; add some with: %s dynamic add %s KEY...\n", set, s.app.Name, set)
				return nil
			}
			for _, k := range keys {
				fmt.Fprintln(s.stdout, k)
			}
			return nil
		}),
	}
	c.AddCommand(
		edit("add", "Add keys to a dynamic set (adding a key twice is harmless)", "added", (*runtime.Engine).AddPartitions),
		edit("remove", "Remove keys from a dynamic set (their materializations stay recorded)", "removed", (*runtime.Engine).RemovePartitions),
		list,
	)
	return c
}

// openDynamic checks that set names a dynamic set of the pipeline's assets,
// so a misspelt name is not silently a new set, and opens the engine,
// read-only when the command only reads.
func (s *session) openDynamic(ctx context.Context, set string, read bool) (*runtime.Engine, *runtime.Pipeline, string, error) {
	bindings := s.bindings
	if read {
		bindings = s.readBindings
	}
	bs, p, err := bindings(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	names := dynamicSets(p)
	if !slices.Contains(names, set) {
		if len(names) == 0 {
			return nil, nil, "", usageErr("dynamic set %s: pipeline %s has no dynamic partition sets", set, p.Name())
		}
		return nil, nil, "", usageErr("dynamic set %s: not a set of pipeline %s (its dynamic sets: %s)", set, p.Name(), strings.Join(names, ", "))
	}
	open := func(ctx context.Context, bs []runtime.Binding) (*runtime.Engine, error) {
		return s.open(ctx, bs, false)
	}
	if read {
		open = s.openRead
	}
	eng, err := open(ctx, bs)
	return eng, p, set, err
}

// dynamicSets names the dynamic sets of the pipeline's assets, including
// the dimensions of multi sets, sorted.
func dynamicSets(p *runtime.Pipeline) []string {
	var names []string
	for _, s := range p.DynamicSets() {
		names = append(names, s.Name())
	}
	return names
}
