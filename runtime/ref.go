package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
)

// Ref addresses one asset of one run at one partition ("" when unpartitioned).
type Ref struct {
	RunID     string
	Asset     string
	Partition flowstone.Partition
}

// String words the ref for messages: "refund of run R", or "review
// (partition 2024-01-02T15) of run R".
func (r Ref) String() string {
	if r.Partition == "" {
		return r.Asset + " of run " + r.RunID
	}
	return r.Asset + " (partition " + string(r.Partition) + ") of run " + r.RunID
}

// ErrNotInRun: a Ref names a run that does not exist, an asset the run does
// not hold, or a partition the run does not materialize for that asset. The
// error names what is valid; a missing run also matches ErrRunNotFound.
var ErrNotInRun = errors.New("not in the run")

// refNode is the run's row a valid Ref points at.
type refNode struct {
	pipeline string
	status   AssetStatus
}

// valid checks ref's keys (flowstone.ValidateKey) before they reach the
// database.
func (r Ref) valid() error {
	if err := validRunID(r.RunID); err != nil {
		return err
	}
	if err := flowstone.ValidateKey("asset", r.Asset); err != nil {
		return err
	}
	if err := flowstone.ValidateKey("partition key", string(r.Partition)); err != nil {
		return fmt.Errorf("%w: %w", flowstone.ErrInvalidPartition, err)
	}
	return nil
}

// validRunID checks a run ID given from outside (flowstone.ValidateKey).
func validRunID(id string) error { return flowstone.ValidateKey("run ID", id) }

// node is the store's address of ref.
func (r Ref) node() store.Node {
	return store.Node{Run: r.RunID, Asset: r.Asset, Partition: string(r.Partition)}
}

// resolveRef checks that ref is one node of its run and returns it.
func (e *Engine) resolveRef(ctx context.Context, q querier, ref Ref) (refNode, error) {
	var n refNode
	if err := ref.valid(); err != nil {
		return n, err
	}
	pipeline, found, err := e.st.RunPipeline(ctx, q, ref.RunID)
	if err != nil {
		return n, err
	}
	if !found {
		return n, fmt.Errorf("%w: %w: %q", ErrNotInRun, ErrRunNotFound, ref.RunID)
	}
	n.pipeline = pipeline
	parts, err := e.st.AssetPartitions(ctx, q, ref.RunID, ref.Asset)
	if err != nil {
		return n, err
	}
	if len(parts) == 0 {
		assets, err := e.st.RunAssetKeys(ctx, q, ref.RunID)
		if err != nil {
			return n, err
		}
		return n, notInRun(ref, assets, nil)
	}
	if !slices.Contains(parts, string(ref.Partition)) {
		return n, notInRun(ref, nil, parts)
	}
	status, _, err := e.st.NodeStatus(ctx, q, ref.node())
	n.status = AssetStatus(status)
	return n, err
}

// notInRun refuses ref: its asset is not one of assets (when parts is
// nil), or its partition not one of parts.
func notInRun(ref Ref, assets, parts []string) error {
	if parts == nil {
		return fmt.Errorf("%w: run %s has no asset %q (it has %s)", ErrNotInRun, ref.RunID, ref.Asset, listSome(assets))
	}
	what := "partition " + strconv.Quote(string(ref.Partition))
	if len(parts) == 1 && parts[0] == "" {
		return fmt.Errorf("%w: asset %s of run %s is unpartitioned: it has no %s", ErrNotInRun, ref.Asset, ref.RunID, what)
	}
	if ref.Partition == "" {
		what = "unpartitioned node: name a partition"
	}
	return fmt.Errorf("%w: asset %s of run %s has no %s (its partitions: %s)", ErrNotInRun, ref.Asset, ref.RunID, what, listSome(parts))
}

// Node returns the run's state of ref's asset at ref's partition. A ref of
// another run, or outside this one, is refused with ErrNotInRun naming what
// the run holds.
func (r RunResult) Node(ref Ref) (AssetResult, error) {
	if ref.RunID != r.ID {
		return AssetResult{}, fmt.Errorf("%w: %s is not in run %s", ErrNotInRun, ref, r.ID)
	}
	byPart, ok := r.ByPartition[ref.Asset]
	if !ok {
		assets := r.Order
		if len(assets) != len(r.ByPartition) {
			assets = slices.Sorted(maps.Keys(r.ByPartition))
		}
		return AssetResult{}, notInRun(ref, assets, nil)
	}
	a, ok := byPart[ref.Partition]
	if !ok {
		parts := make([]string, 0, len(byPart))
		for p := range byPart {
			parts = append(parts, string(p))
		}
		slices.Sort(parts)
		return AssetResult{}, notInRun(ref, nil, parts)
	}
	return a, nil
}

// listSome joins the first few of list for an error message, saying how
// many more there are: an hourly asset has 24 partitions in a daily run.
func listSome(list []string) string {
	const most = 8
	shown := list
	if len(list) > most {
		shown = list[:most]
	}
	quoted := make([]string, len(shown))
	for i, s := range shown {
		if s == "" {
			s = `""`
		}
		quoted[i] = s
	}
	out := strings.Join(quoted, ", ")
	if len(list) > most {
		out += fmt.Sprintf(" and %d more", len(list)-most)
	}
	return out
}
