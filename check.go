package flowstone

// Severity is how much a failed check matters.
type Severity string

const (
	// SeverityError is a failed check that is an error (the default).
	SeverityError Severity = "error"
	// SeverityWarn is a failed check that is only a warning.
	SeverityWarn Severity = "warn"
)

// CheckResult is what a //flowstone:check function returns about one
// materialization of its asset.
type CheckResult struct {
	Passed bool
	// Severity overrides the directive's severity= for this result when
	// set.
	Severity    Severity
	Description string
	// Metadata is stored with the result as JSON.
	Metadata map[string]any
}
