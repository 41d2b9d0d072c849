// Package other exports an alias of a struct with an unexported field.
package other

// Opaque cannot be spelled outside this package. Its unexported field is
// left out of the stored value on purpose (json:"-").
type Opaque = struct {
	N      int
	hidden int `json:"-"`
}
