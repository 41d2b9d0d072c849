package flowstone

// SensorResult is what a //flowstone:sensor function returns: the runs it
// requests and the cursor the engine stores for its next evaluation.
type SensorResult struct {
	Requests []RunRequest
	Cursor   string
}

// RunRequest asks for one run. A non-empty RunKey makes the request happen
// at most once, however often the sensor returns it.
type RunRequest struct {
	RunKey    string
	Partition Partition
	Config    any
}
