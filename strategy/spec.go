package strategy

// OptionType is the grammar of one directive option's value.
type OptionType int

const (
	// Flag is a bare word with no value: router, gate.
	Flag OptionType = iota
	// String is any word or double-quoted Go string.
	String
	// Int is a base-10 integer within [Min, Max].
	Int
	// Float is a decimal number within [Min, Max].
	Float
	// Duration is a Go duration (time.ParseDuration), greater than zero.
	Duration
	// Rate is N/s, N/m or N/h with N > 0; emitted as events per second.
	Rate
	// AssetKey names another asset of the pipeline.
	AssetKey
	// AssetKeys is a comma-separated list of asset keys.
	AssetKeys
	// Ident names a package-level variable of the annotated package.
	Ident
	// Enum is one of Option.Enum.
	Enum
	// Names is a comma-separated list of labels.
	Names
	// Cron is a cron expression (five fields, or a descriptor like @daily).
	Cron
)

// Option declares one option of the //flowstone:asset directive.
type Option struct {
	Name string
	Type OptionType
	// Field is the field of the kind's strategy value that the generator
	// sets from the option; empty when the option is not passed to the
	// strategy (a selector flag, or an option the analyser consumes).
	Field    string
	Enum     []string
	Min, Max float64
	// Requires names an option that must be present with this one, or
	// several separated by | of which one must be.
	Requires string
	Doc      string
}

// Spec declares an asset kind to the generator: the strategy type it
// executes with, how an asset selects it, and the options it accepts beyond
// the common ones.
type Spec struct {
	// Kind is the kind's name: router, gate, ...
	Kind string
	// TypeName is the exported type in this package that implements the
	// kind; the generated dispatch table holds a value of it.
	TypeName string
	// Selectors are the options whose presence selects this kind.
	Selectors []string
	// SelectedByOutcome selects the kind for an asset with a
	// flowstone.Outcome[T] parameter and no other selector.
	SelectedByOutcome bool
	Options           []Option
	Doc               string
}

// StandardKind is the kind of an asset with no kind-selecting option.
const StandardKind = "standard"

// CustomKind is the kind of an asset with strategy=Ident.
const CustomKind = "custom"

// CommonOptions returns the options every asset kind accepts.
func CommonOptions() []Option {
	return []Option{
		{Name: "name", Type: String, Doc: "asset key override"},
		{Name: "deps", Type: AssetKeys, Doc: "ordering-only dependencies"},
		{Name: "partitions", Type: Ident, Doc: "a package-level flowstone.PartitionSet"},
		{Name: "retries", Type: Int, Min: 0, Max: 100, Doc: "retries after a failed attempt"},
		{Name: "timeout", Type: Duration, Doc: "limit on one attempt"},
		{Name: "queue", Type: String, Doc: "River queue"},
		{Name: "priority", Type: Int, Min: 1, Max: 4, Doc: "River priority, 1 first"},
		{Name: "io", Type: Ident, Doc: "a package-level runtime.IOManager"},
		{Name: "group", Type: String, Doc: "display group"},
		{Name: "tags", Type: Names, Doc: "labels for selection"},
		{Name: "schedule", Type: Cron, Doc: "materialize on a cron schedule"},
		{Name: "config", Type: Ident, Requires: "schedule|auto", Doc: "a package-level value of the config type: the config of scheduled and automated runs"},
		{Name: "code_version", Type: String, Doc: "pins the code version by hand instead of hashing the source"},
		{Name: "fresh", Type: Duration, Doc: "overdue when the newest materialization (of the newest complete partition) is older than this"},
		{Name: "auto", Type: Enum, Enum: []string{"eager", "missing"}, Doc: "declarative automation: eager materializes when an upstream has a new materialization, missing fills partitions never materialized"},
	}
}

// Specs returns the built-in kinds other than standard.
func Specs() []Spec {
	return []Spec{
		{
			Kind: "router", TypeName: "Router", Selectors: []string{"router"},
			Doc: "returns (flowstone.Route, error) and chooses branches",
			Options: []Option{
				{Name: "router", Type: Flag},
				{Name: "fallback", Type: AssetKey, Field: "Fallback", Doc: "branch taken when the router fails for good"},
			},
		},
		{
			Kind: "routed", TypeName: "Routed", Selectors: []string{"routed_from"},
			Doc: "runs only when its router selects it",
			Options: []Option{
				{Name: "routed_from", Type: AssetKey, Field: "Router"},
			},
		},
		{
			Kind: "join", TypeName: "Join", Selectors: []string{"wait"}, SelectedByOutcome: true,
			Doc: "runs once its Outcome dependencies are terminal",
			Options: []Option{
				{Name: "wait", Type: Duration, Field: "Wait", Doc: "run after D with whatever finished"},
			},
		},
		{
			Kind: "gate", TypeName: "Gate", Selectors: []string{"gate"},
			Doc: "holds its value until approved",
			Options: []Option{
				{Name: "gate", Type: Flag},
				{Name: "gate_timeout", Type: Duration, Field: "Timeout"},
				{Name: "on_timeout", Type: Enum, Field: "OnTimeout", Enum: []string{"fail", "approve", "reject"}, Requires: "gate_timeout"},
			},
		},
		{
			Kind: "scatter", TypeName: "Scatter", Selectors: []string{"scatter"},
			Doc: "runs once per item of a slice asset",
			Options: []Option{
				{Name: "scatter", Type: AssetKey, Field: "Source"},
				{Name: "batch", Type: Int, Field: "Batch", Min: 1, Max: 100000},
				{Name: "max_concurrent", Type: Int, Field: "MaxConcurrent", Min: 1, Max: 1000000},
				{Name: "rate", Type: Rate, Field: "PerSecond"},
				{Name: "failure_threshold", Type: Float, Field: "FailureThreshold", Min: 0, Max: 1},
			},
		},
		{
			Kind: CustomKind, Selectors: []string{"strategy"},
			Doc: "a user's strategy.Strategy value",
			Options: []Option{
				{Name: "strategy", Type: Ident},
			},
		},
	}
}
