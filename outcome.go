package flowstone

import (
	"encoding/json"
	"errors"
)

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

// outcomeJSON is an Outcome's stored form: the error as its message.
type outcomeJSON[T any] struct {
	Value   T      `json:"value"`
	Error   string `json:"error,omitempty"`
	Skipped bool   `json:"skipped,omitempty"`
}

// MarshalJSON stores the error as its message.
func (o Outcome[T]) MarshalJSON() ([]byte, error) {
	j := outcomeJSON[T]{Value: o.Value, Skipped: o.Skipped}
	if o.Err != nil {
		j.Error = o.Err.Error()
	}
	return json.Marshal(j)
}

// UnmarshalJSON restores an Outcome; a stored error comes back as an
// error with the same message.
func (o *Outcome[T]) UnmarshalJSON(data []byte) error {
	var j outcomeJSON[T]
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*o = Outcome[T]{Value: j.Value, Skipped: j.Skipped}
	if j.Error != "" {
		o.Err = errors.New(j.Error)
	}
	return nil
}
