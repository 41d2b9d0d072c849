package flowstone

// Outcome is what a tolerant dependency receives: the upstream's value, or the
// error it failed with, or Skipped when a router did not select it. A
// parameter of type Outcome[T] lets an asset run once the upstream is
// terminal, whatever its result (a join).
type Outcome[T any] struct {
	Value   T
	Err     error
	Skipped bool
}

// OK reports whether the upstream succeeded.
func (o Outcome[T]) OK() bool { return o.Err == nil && !o.Skipped }

// Previous is the value of an asset's own previous partition, for cumulative
// assets. A parameter of type Previous[T] named after the asset's own key
// receives it. For the first partition of a set Found is false.
type Previous[T any] struct {
	Value     T
	Partition Partition
	Found     bool
}
