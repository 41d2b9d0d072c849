package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"time"

	"github.com/flowstone-go/flowstone/strategy"
)

// Import paths the generated code and the analysis refer to.
const (
	flowstonePath = "github.com/flowstone-go/flowstone"
	runtimePath   = flowstonePath + "/runtime"
	strategyPath  = flowstonePath + "/strategy"
)

// GenFileName is the name of the file flowstonegen writes into each
// annotated package.
const GenFileName = "flowstone_gen.go"

// pipelineDecl is one annotated package: what the parse stage found and the
// analysis stage resolved.
type pipelineDecl struct {
	pkg     *loadedPackage
	dir     string
	name    string // pipeline name
	namePos token.Pos
	assets  []*asset // in source order
	byKey   map[string]*asset
	sensors []*sensor       // in source order
	checks  []*assetCheck   // in source order
	config  *types.TypeName // nil without //flowstone:config
	cfgPos  token.Pos
	// typeErrs holds the package's type errors by position; the generator
	// reports one only where it makes an asset signature unusable.
	typeErrs map[token.Position]string
	// directives reports whether any flowstone directive was found.
	directives bool

	// Set by the analysis.
	resources []resource // sorted by field name
	order     []*asset   // topological order
	usesCfg   bool
}

// asset is one annotated function.
type asset struct {
	fn    *ast.FuncDecl
	obj   *types.Func
	sig   *types.Signature
	dir   *directive
	index int // source order within the package

	key   string
	ident string // suffix of AssetX, LoadX
	desc  string
	opts  map[string]*optValue
	// kind is the selected spec's index in the option table, -1 for
	// standard.
	kind     int
	kindSpec *strategy.Spec
	// broken marks an asset whose signature is unusable; dependents do not
	// repeat its errors.
	broken bool

	params []*param
	result types.Type // nil for an error-only asset
	// value is what dependents receive: result, or []result for a scatter.
	value types.Type

	deps        []dep
	resources   []string
	usesConfig  bool
	codeVersion string
	srcFile     string   // base name of the file declaring the function
	srcHash     string   // internal/codeversion's hash of the function
	branches    []*asset // a router's routed assets
}

// paramRole says where a wrapper gets a parameter's argument from.
type paramRole int

const (
	roleContext paramRole = iota
	rolePartition
	roleConfig
	roleValue
	roleOutcome
	roleOutcomes // []flowstone.Outcome[T] of a scatter: every item's outcome
	rolePartitions
	rolePrevious
	roleItem
	roleResource
)

// param is one parameter of an asset function.
type param struct {
	name  string // as declared; "" or "_" when blank
	local string // the wrapper's variable
	typ   types.Type
	pos   token.Pos
	role  paramRole
	dep   *asset     // the upstream for dependency roles
	elem  types.Type // T of Outcome[T], map[Partition]T, Previous[T]
	field string     // Resources field for roleResource
}

// depKind mirrors runtime.DepKind by name.
type depKind string

const (
	depValue      depKind = "DepValue"
	depOutcome    depKind = "DepOutcome"
	depPartitions depKind = "DepPartitions"
	depPrevious   depKind = "DepPrevious"
	depOrder      depKind = "DepOrder"
)

// dep is one edge of the asset graph.
type dep struct {
	on   *asset
	kind depKind
}

// resource is one field of the generated Resources struct.
type resource struct {
	name  string // parameter name
	field string
	typ   types.Type
	pos   token.Pos
	owner string // "asset k" or "sensor s": the first to take it
}

// sensor is one //flowstone:sensor function.
type sensor struct {
	fn  *ast.FuncDecl
	sig *types.Signature
	dir *directive

	name  string
	ident string // suffix of SensorX, runSensorX
	desc  string
	every time.Duration
	// targets are asset keys, checked by the analysis; targetsAt holds
	// each one's position.
	targets   []string
	targetsAt []token.Pos
	// broken marks a sensor whose signature is unusable.
	broken bool

	params    []*param // the resources, after ctx and cursor
	resources []string
}

// subject names the sensor in messages.
func (s *sensor) subject() string { return "sensor " + s.name }

// subject names the asset in messages.
func (a *asset) subject() string { return "asset " + a.key }
