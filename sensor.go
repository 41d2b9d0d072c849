package flowstone

// SensorResult is what a //flowstone:sensor function returns: the runs it
// requests and the cursor the engine stores for its next evaluation.
type SensorResult struct {
	Requests []RunRequest
	Cursor   string
}

// RunRequest asks for one run. A non-empty RunKey makes the request happen
// at most once, however often the sensor returns it.
//
// The run computes the sensor's targets, as a scheduled run does: a
// request means "compute this now". Their upstreams are reused when up to
// date. Reuse lets the targets be reused too when nothing they depend on
// changed (same code, inputs and config).
type RunRequest struct {
	RunKey    string
	Partition Partition
	Config    any
	Reuse     bool
}
