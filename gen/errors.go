package gen

import (
	"cmp"
	"errors"
	"fmt"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
)

// Error is a generator error at a position in the annotated package. Its
// Error method prints the absolute file name; Format prints it relative to a
// directory, the way go build does.
type Error struct {
	Pos token.Position
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Format prints the error as file:line:col: msg with the file relative to
// dir: ./x.go for a file in dir itself, sub/x.go below it.
func (e *Error) Format(dir string) string {
	if !e.Pos.IsValid() {
		return e.Msg
	}
	p := e.Pos
	p.Filename = relPath(dir, p.Filename)
	return p.String() + ": " + e.Msg
}

// FormatError prints err like Error.Format when it is positioned, and as is
// otherwise.
func FormatError(err error, dir string) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Format(dir)
	}
	return err.Error()
}

func relPath(dir, file string) string {
	if dir == "" || !filepath.IsAbs(file) {
		return file
	}
	rel, err := filepath.Rel(dir, file)
	if err != nil || len(rel) >= len(file) {
		return file
	}
	if !strings.ContainsRune(rel, filepath.Separator) {
		return "." + string(filepath.Separator) + rel
	}
	return rel
}

// errorList collects positioned errors across a whole package; nil errors
// are skipped so callers can add results unconditionally.
type errorList struct {
	fset *token.FileSet
	errs []error
}

func (l *errorList) add(err error) {
	if err != nil {
		l.errs = append(l.errs, err)
	}
}

// at records a message at pos.
func (l *errorList) at(pos token.Pos, format string, args ...any) {
	l.errs = append(l.errs, &Error{Pos: l.fset.Position(pos), Msg: fmt.Sprintf(format, args...)})
}

// sortErrors orders errors by file, line and column, unpositioned first,
// and drops exact duplicates.
func sortErrors(errs []error) []error {
	key := func(err error) (token.Position, string) {
		var e *Error
		if errors.As(err, &e) {
			return e.Pos, e.Msg
		}
		return token.Position{}, err.Error()
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		pa, ma := key(a)
		pb, mb := key(b)
		return cmp.Or(
			cmp.Compare(pa.Filename, pb.Filename),
			cmp.Compare(pa.Line, pb.Line),
			cmp.Compare(pa.Column, pb.Column),
			cmp.Compare(ma, mb),
		)
	})
	return slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
}

// Message formats. Every message the generator prints is one of these, so a
// test can check that each has a golden case (testdata/*/want/errors.txt).
const (
	// Directive syntax.
	msgLookalike        = "malformed directive %q: write //flowstone:%s, lower case, with no spaces inside"
	msgUnknownDirective = "unknown directive //flowstone:%s (known: %s)%s"
	msgDirectiveNoSpace = "directive //flowstone:%s must be followed by a space before its options"
	msgBadOptionName    = "malformed option %q: want key=value or a bare flag of lower-case letters, digits and underscores"
	msgEmptyValue       = "option %s= has no value"
	msgBadQuoted        = "option %s: malformed quoted value: %v"
	msgAfterQuote       = "option %s: unexpected %q after the closing quote"
	msgStrayQuote       = "option %s: a value containing '\"' must be a double-quoted Go string"

	// Directive placement.
	msgMisplacedFunc      = "//flowstone:%s must be in the doc comment of a top-level function"
	msgMisplacedConfig    = "//flowstone:config must be in the doc comment of a type declaration"
	msgMisplacedPipeline  = "//flowstone:pipeline must be in the package doc comment"
	msgDuplicateDirective = "second //flowstone:%s directive for %s"
	msgTwoDirectives      = "%s has both //flowstone:%s and //flowstone:%s; keep one"
	msgMethod             = "%s: method %s cannot be %s; use a top-level function"
	msgGeneric            = "%s: generic function %s cannot be %s"
	msgRedeclared         = "%s: %s"
	msgVariadic           = "%s: variadic parameter %s is not supported"
	msgConfigOptions      = "//flowstone:config takes no options"
	msgConfigGeneric      = "config type %s cannot be generic"
	msgSecondConfig       = "second config type %s; a pipeline has one config type (the first is %s at %s)"
	msgPipelineOption     = "//flowstone:pipeline: unknown option %s (known: name)%s"
	msgPipelineName       = "//flowstone:pipeline: name %q is not valid: use lower-case letters, digits and underscores"
	msgSecondPipeline     = "second //flowstone:pipeline directive; the first is at %s"

	// Options.
	msgUnknownOption   = "%s: unknown option %s%s"
	msgDuplicateOption = "%s: option %s given twice"
	msgFlagWithValue   = "asset %s: option %s takes no value"
	msgMissingValue    = "%s: option %s needs a value (%s=%s)"
	msgBadValue        = "%s: option %s=%s: %s"
	msgTwoKinds        = "asset %s: options %s and %s select different kinds (%s, %s); an asset has one kind"
	msgWrongKind       = "asset %s: option %s needs %s"
	msgRequires        = "asset %s: option %s requires %s"
	msgBadKey          = "asset %s: name %q is not a valid asset key: use lower-case letters, digits and underscores, starting with a letter"

	// Signatures.
	msgFirstParam      = "%s: the first parameter must be a context.Context"
	msgReturns         = "asset %s: must return (T, error) or error, not %s"
	msgRouterReturns   = "asset %s: a router must return (flowstone.Route, error), not %s"
	msgBadType         = "%s: %s has an invalid type%s"
	msgUnnameable      = "%s: %s has type %s, which generated code cannot name outside package %s"
	msgUnnamedParam    = "%s: parameter %d (%s) needs a name: dependencies and resources are matched by name"
	msgNameCollision   = "%s: generated name %s is already declared at %s"
	msgRoundTrip       = "asset %s: values of type %s do not round-trip through the JSON value codec: %s"
	msgConfigRoundTrip = "config type %s does not round-trip through JSON: %s"
	msgReservedName    = "%s is declared here, but flowstonegen generates it for the pipeline; rename this declaration"

	// Keys and dependencies.
	msgDuplicateKey     = "asset %s: duplicate asset key (also %s at %s)"
	msgDepType          = "asset %s: parameter %s has type %s, but asset %s produces %s"
	msgDepNoValue       = "asset %s: parameter %s: asset %s returns only error, so it has no value; use deps=%s to run after it"
	msgSelfParam        = "asset %s: parameter %s names the asset itself; take flowstone.Previous[%s] to read its previous partition"
	msgPreviousName     = "asset %s: parameter %s has type %s, but a Previous parameter must be named after the asset's own key %s"
	msgPreviousType     = "asset %s: parameter %s has type %s, but the asset produces %s"
	msgPreviousUnpart   = "asset %s: parameter %s reads the previous partition, but the asset has no partitions="
	msgNoSuchDep        = "asset %s: parameter %s has type %s, but no asset is named %s%s"
	msgMisspelledDep    = "asset %s: parameter %s has the type asset %s produces (%s) but matches no asset; did you mean %s?"
	msgUnpartitionedMap = "asset %s: parameter %s takes every partition of %s, but %s has no partitions="
	msgSamePartsMap     = "asset %s: parameter %s: %s and %s share partitions=%s, which maps key to key; take %s"
	msgPartitionedDep   = "asset %s: parameter %s: %s is partitioned by %s but %s %s; take map[flowstone.Partition]%s for the partitions it covers"
	msgUnknownDep       = "%s: %s=%s: no asset is named %s%s"
	msgSelfDep          = "asset %s: deps=%s names the asset itself"
	msgRepeatedDep      = "asset %s: deps=%s repeats a dependency already taken by parameter %s"
	msgResourceType     = "%s: resource %s has type %s, but it is %s at %s; a resource name means one type across the package"
	msgResourceField    = "%s: resources %s and %s both become the field Resources.%s"
	msgCycle            = "dependency cycle: %s"

	// Kinds.
	msgNotRouter         = "asset %s: routed_from=%s: asset %s is not a router (its directive needs router)"
	msgNoBranches        = "asset %s: router has no branches: no asset has routed_from=%s"
	msgFallback          = "asset %s: fallback=%s is not a branch of this router (branches: %s)"
	msgScatterSource     = "asset %s: scatter=%s: asset %s produces %s, not a slice"
	msgScatterItem       = "asset %s: a scatter asset takes exactly one parameter of type %s, the item type of %s; it takes %d"
	msgScatterSelf       = "asset %s: scatter=%s names the asset itself"
	msgIdentMissing      = "asset %s: %s=%s: no package-level variable %s%s"
	msgIdentNotVar       = "asset %s: %s=%s: %s is not a package-level variable"
	msgConfigNoType      = "asset %s: config=%s: the pipeline has no //flowstone:config type"
	msgConfigDefaultType = "asset %s: config=%s: %s has type %s, but the run config is %s"
	msgScheduleConfig    = "asset %s: %s runs need a config: %s %s; add config=Ident naming a package-level %s value"
	msgIdentType         = "asset %s: %s=%s: %s has type %s, which does not implement %s"
	msgParquetTable      = "asset %s: io=%s stores Parquet, which needs a slice of structs; the asset produces %s"
	msgParquetField      = "asset %s: io=%s stores Parquet, which cannot hold %s of type %s: %s"

	// Sensors.
	msgSensorRequired   = "sensor %s: option %s is required: %s"
	msgSensorName       = "sensor %s: name %q is not a valid sensor name: use lower-case letters, digits and underscores, starting with a letter"
	msgSensorCursor     = "sensor %s: the second parameter must be cursor string, the stored cursor (found %s)"
	msgSensorReturns    = "sensor %s: must return (flowstone.SensorResult, error), not %s"
	msgSensorParamType  = "sensor %s: parameter %s has type %s; after ctx and cursor a sensor takes only resources"
	msgSensorParamAsset = "sensor %s: parameter %s is named after asset %s, but a sensor takes no asset values; give the resource another name"
	msgDuplicateSensor  = "sensor %s: duplicate sensor name (also %s at %s)"

	// Checks.
	msgCheckAsset     = "check %s: option asset is required: asset=KEY, the asset it checks"
	msgCheckName      = "check %s: name %q is not a valid check name: use lower-case letters, digits and underscores, starting with a letter"
	msgCheckFlagValue = "check %s: option %s takes no value (write %s alone)"
	msgCheckNoValue   = "check %s: asset %s returns only an error, so there is no value to check"
	msgCheckValue     = "check %s: the second parameter must be the value of asset %s, of type %s (found %s)"
	msgCheckReturns   = "check %s: must return (flowstone.CheckResult, error), not %s"
	msgCheckParam     = "check %s: parameter %s has type %s; after ctx and the checked value a check takes only resources"
	msgDuplicateCheck = "check %s: asset %s already has a check of that name (%s at %s)"

	// Packages.
	msgNoAssets = "no //flowstone:asset functions in %s"
)
