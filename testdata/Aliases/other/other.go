// Package other exports an alias of a struct with an unexported field.
package other

// Opaque cannot be spelled outside this package.
type Opaque = struct{ hidden int }
