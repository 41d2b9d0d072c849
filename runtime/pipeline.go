package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/internal/codeversion"
	"github.com/flowstone-go/flowstone/strategy"
)

// DepKind says how a dependency's value reaches the asset function.
type DepKind int

const (
	// DepValue passes the upstream's value as T; the upstream must succeed.
	DepValue DepKind = iota
	// DepOutcome passes flowstone.Outcome[T]; the upstream may fail or be
	// skipped.
	DepOutcome
	// DepPartitions passes map[flowstone.Partition]T of the upstream's
	// partitions that the asset's partition covers.
	DepPartitions
	// DepPrevious passes flowstone.Previous[T] of the asset's own previous
	// partition. It orders nothing within a run.
	DepPrevious
	// DepOrder passes nothing: the upstream must succeed first (deps=).
	DepOrder
)

// String returns the kind's name.
func (k DepKind) String() string {
	switch k {
	case DepValue:
		return "value"
	case DepOutcome:
		return "outcome"
	case DepPartitions:
		return "partitions"
	case DepPrevious:
		return "previous"
	case DepOrder:
		return "order"
	}
	return fmt.Sprintf("DepKind(%d)", int(k))
}

// Tolerant reports whether a failed or skipped upstream still lets the
// dependent run.
func (k DepKind) Tolerant() bool { return k == DepOutcome }

// Dep is one dependency of an asset.
type Dep struct {
	Asset string
	Kind  DepKind
}

// RunFunc is a generated, typed call wrapper: it loads the asset's inputs
// from in and calls the annotated function. It returns the function's value
// (nil for an error-only asset).
type RunFunc func(ctx context.Context, in *Inputs) (any, error)

// AssetDef is one asset as the generator describes it. Generated code fills
// it in; user code reads it through Pipeline.
type AssetDef struct {
	Key         string
	Description string
	// Kind is the asset kind's name (standard, router, ...), for display;
	// execution goes through Strategy alone.
	Kind     string
	Strategy strategy.Strategy
	Deps     []Dep
	// Partitions is nil for an unpartitioned asset.
	Partitions flowstone.PartitionSet
	Retries    int
	Timeout    time.Duration
	Queue      string
	Priority   int
	// IO stores the asset's values; nil means the engine's database.
	IO       IOManager
	Group    string
	Tags     []string
	Schedule string
	// Fresh is the freshness bound (fresh=): the asset is overdue when
	// its newest materialization is older, or, for a time-partitioned
	// asset, when its newest complete partition is not materialized this
	// long after its window ended. Zero means no bound.
	Fresh time.Duration
	// Auto is the asset's declarative automation (auto=): AutoEager or
	// AutoMissing; empty means none. See Config.AutomationInterval.
	Auto string
	// ScheduleConfig is the run config of scheduled runs (config=): a
	// value of the pipeline's config type, nil when the asset and its
	// upstreams take none.
	ScheduleConfig any
	// CodeVersion hashes the function's source and directive, or is the
	// version code_version= pins.
	CodeVersion string
	// Source locates the function in PipelineDef.Sources; Open checks it.
	Source SourceRef
	// HasValue is false for an asset whose function returns only error.
	HasValue   bool
	UsesConfig bool
	Resources  []string
	// ValueType is the Go type of the value, for display.
	ValueType string
	// Item describes a scatter asset's item type; nil for other kinds.
	Item *ItemSpec
	Run  RunFunc
}

// PipelineDef is the generated description of a pipeline.
type PipelineDef struct {
	Name string
	// Config describes the run config type; nil when no asset takes one.
	Config *ConfigSpec
	// Resources describes the generated Resources struct.
	Resources *ResourcesSpec
	// Assets in topological order.
	Assets []AssetDef
	// Sensors of the pipeline (//flowstone:sensor).
	Sensors []SensorDef
	// Checks of the pipeline's assets (//flowstone:check).
	Checks []CheckDef
	// Sources holds the annotated files (embedded by the generated file):
	// Open computes each asset's source hash from them again and refuses
	// the pipeline when one differs from its Source.Hash.
	Sources fs.FS
}

// SourceRef names where an asset's function is declared and the hash of
// its source (internal/codeversion) when flowstone_gen.go was generated.
type SourceRef struct {
	File, Func, Hash string
}

// SensorFunc is a generated wrapper that calls a //flowstone:sensor
// function with the stored cursor and the process's resources.
type SensorFunc func(ctx context.Context, cursor string, in *Inputs) (flowstone.SensorResult, error)

// SensorDef is one sensor as the generator describes it.
type SensorDef struct {
	// Name is the function's name in snake_case (or name=); the cursor is
	// stored under it.
	Name        string
	Description string
	// Every is the interval between evaluations.
	Every time.Duration
	// Targets are the assets its run requests materialize.
	Targets   []string
	Resources []string
	Run       SensorFunc
}

// Pipeline is an immutable, validated pipeline definition. Generated code
// builds one with NewPipeline.
type Pipeline struct {
	name       string
	config     *ConfigSpec
	resources  *ResourcesSpec
	assets     []*AssetDef
	byKey      map[string]*AssetDef
	downstream map[string][]string
	sensors    []*SensorDef
	sources    fs.FS
	// checks of each asset, by asset key, in declaration order.
	checks map[string][]*CheckDef
}

// NewPipeline validates def and returns the pipeline. Generated code calls
// it; def is checked at generate time, so an error here means the generated
// file was edited by hand, and NewPipeline panics.
func NewPipeline(def PipelineDef) *Pipeline {
	p, err := buildPipeline(def)
	if err != nil {
		panic(fmt.Sprintf("flowstone: invalid pipeline %q: %v", def.Name, err))
	}
	return p
}

func buildPipeline(def PipelineDef) (*Pipeline, error) {
	if def.Name == "" {
		return nil, fmt.Errorf("empty name")
	}
	p := &Pipeline{
		name:       def.Name,
		config:     def.Config,
		resources:  def.Resources,
		sources:    def.Sources,
		byKey:      make(map[string]*AssetDef, len(def.Assets)),
		downstream: map[string][]string{},
	}
	for i := range def.Assets {
		a := def.Assets[i]
		a.Deps = slices.Clone(a.Deps)
		a.Tags = slices.Clone(a.Tags)
		a.Resources = slices.Clone(a.Resources)
		if a.Key == "" {
			return nil, fmt.Errorf("asset %d has no key", i)
		}
		if _, dup := p.byKey[a.Key]; dup {
			return nil, fmt.Errorf("duplicate asset %q", a.Key)
		}
		if a.Strategy == nil {
			return nil, fmt.Errorf("asset %q has no strategy", a.Key)
		}
		if a.Run == nil {
			return nil, fmt.Errorf("asset %q has no call wrapper", a.Key)
		}
		for _, d := range a.Deps {
			if d.Kind == DepPrevious {
				if d.Asset != a.Key {
					return nil, fmt.Errorf("asset %q: previous dependency on %q, not itself", a.Key, d.Asset)
				}
				continue
			}
			if _, ok := p.byKey[d.Asset]; !ok {
				return nil, fmt.Errorf("asset %q depends on %q, which is not defined before it", a.Key, d.Asset)
			}
			if !slices.Contains(p.downstream[d.Asset], a.Key) {
				p.downstream[d.Asset] = append(p.downstream[d.Asset], a.Key)
			}
		}
		p.assets = append(p.assets, &a)
		p.byKey[a.Key] = &a
	}
	for k := range p.downstream {
		sort.Strings(p.downstream[k])
	}
	names := map[string]bool{}
	for i := range def.Sensors {
		s := def.Sensors[i]
		s.Targets = slices.Clone(s.Targets)
		switch {
		case s.Name == "" || names[s.Name]:
			return nil, fmt.Errorf("sensor %d: empty or duplicate name %q", i, s.Name)
		case s.Every <= 0:
			return nil, fmt.Errorf("sensor %s: every must be positive", s.Name)
		case s.Run == nil:
			return nil, fmt.Errorf("sensor %s has no call wrapper", s.Name)
		}
		for _, t := range s.Targets {
			if p.byKey[t] == nil {
				return nil, fmt.Errorf("sensor %s targets %q, which is not an asset", s.Name, t)
			}
		}
		names[s.Name] = true
		p.sensors = append(p.sensors, &s)
	}
	if err := p.addChecks(def.Checks); err != nil {
		return nil, err
	}
	return p, nil
}

// checkSources recomputes the source hash of every asset from the
// embedded files and returns ErrStale naming the assets whose code changed
// since the generated file was written: running it would record results
// under the old code version.
func (p *Pipeline) checkSources() error {
	if p.sources == nil {
		return nil
	}
	byFile := map[string]map[string]string{}
	var stale []string
	for _, a := range p.assets {
		if a.Source.File == "" {
			continue
		}
		versions, ok := byFile[a.Source.File]
		if !ok {
			src, err := fs.ReadFile(p.sources, a.Source.File)
			if err == nil {
				versions = codeversion.Funcs(src)
			}
			byFile[a.Source.File] = versions
		}
		if versions[a.Source.Func] != a.Source.Hash {
			stale = append(stale, a.Key)
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("pipeline %s: %w (the code of %s changed since it was generated)", p.name, ErrStale, strings.Join(stale, ", "))
	}
	return nil
}

// Sensors returns the pipeline's sensors.
func (p *Pipeline) Sensors() []*SensorDef { return slices.Clone(p.sensors) }

// Name is the pipeline's name; job kinds and records are keyed by it.
func (p *Pipeline) Name() string { return p.name }

// Assets returns the assets in topological order.
func (p *Pipeline) Assets() []*AssetDef { return slices.Clone(p.assets) }

// Asset returns the asset with key, or nil.
func (p *Pipeline) Asset(key string) *AssetDef { return p.byKey[key] }

// Downstream returns the keys of the assets that depend on key (ordering
// dependencies included, Previous excluded), sorted.
func (p *Pipeline) Downstream(key string) []string { return slices.Clone(p.downstream[key]) }

// Config describes the run config type, or nil.
func (p *Pipeline) Config() *ConfigSpec { return p.config }

// Closure returns targets and everything they depend on, in topological
// order. An unknown target is an error that lists the pipeline's assets.
func (p *Pipeline) Closure(targets []string) ([]*AssetDef, error) {
	if len(targets) == 0 {
		return p.Assets(), nil
	}
	need := map[string]bool{}
	var visit func(string)
	visit = func(k string) {
		if need[k] {
			return
		}
		need[k] = true
		for _, d := range p.byKey[k].Deps {
			if d.Kind != DepPrevious {
				visit(d.Asset)
			}
		}
	}
	for _, t := range targets {
		if p.byKey[t] == nil {
			return nil, p.unknownAsset(t)
		}
		visit(t)
	}
	var out []*AssetDef
	for _, a := range p.assets {
		if need[a.Key] {
			out = append(out, a)
		}
	}
	return out, nil
}

func (p *Pipeline) keys() []string {
	ks := make([]string, len(p.assets))
	for i, a := range p.assets {
		ks[i] = a.Key
	}
	return ks
}
