// Package roundtrip holds value types the JSON value codec cannot carry
// back to an equal value, and ones it can.
package roundtrip

import (
	"context"
	"encoding/json"
	"time"
)

// Counter's only field is unexported: JSON would store {}.
type Counter struct{ n int }

// Order drops its note silently.
type Order struct {
	ID   string
	note string
}

// Shape is an interface: JSON cannot decode into it.
type Shape interface{ Area() float64 }

// Point is a struct, so it cannot be a JSON object key.
type Point struct{ X, Y int }

// Nested hides the problem one level down.
type Nested struct {
	Orders []Order
}

//flowstone:asset
func Counts(ctx context.Context) (Counter, error) { return Counter{}, nil }

//flowstone:asset
func Orders(ctx context.Context) ([]Order, error) { return nil, nil }

//flowstone:asset
func Shapes(ctx context.Context) ([]Shape, error) { return nil, nil }

//flowstone:asset
func Ticks(ctx context.Context) (chan int, error) { return nil, nil }

//flowstone:asset
func Callback(ctx context.Context) (func() error, error) { return nil, nil }

//flowstone:asset
func Grid(ctx context.Context) (map[Point]int, error) { return nil, nil }

//flowstone:asset
func Wave(ctx context.Context) (complex128, error) { return 0, nil }

//flowstone:asset
func Deep(ctx context.Context) (*Nested, error) { return nil, nil }

//flowstone:asset
func Anything(ctx context.Context) (any, error) { return nil, nil }

// The types below opt in or round-trip as they are: no errors.

// Secret has its own JSON codec.
type Secret struct{ value string }

func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.value) }

func (s *Secret) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &s.value) }

// Cell is a map key through MarshalText.
type Cell struct{ row, col int }

func (c Cell) MarshalText() ([]byte, error) { return nil, nil }

func (c *Cell) UnmarshalText(b []byte) error { return nil }

// Blob has a binary codec, which the runtime honours for a whole value.
type Blob struct{ data []byte }

func (b Blob) MarshalBinary() ([]byte, error) { return b.data, nil }

func (b *Blob) UnmarshalBinary(data []byte) error { b.data = data; return nil }

// Cached leaves out a field on purpose.
type Cached struct {
	Key   string
	cache map[string]int `json:"-"`
}

//flowstone:asset
func Secrets(ctx context.Context) ([]Secret, error) { return nil, nil }

//flowstone:asset
func Cells(ctx context.Context) (map[Cell]time.Time, error) { return nil, nil }

//flowstone:asset
func Blobs(ctx context.Context) (Blob, error) { return Blob{}, nil }

//flowstone:asset
func Caches(ctx context.Context) (Cached, error) { return Cached{}, nil }

//flowstone:asset
func Empty(ctx context.Context) (struct{}, error) { return struct{}{}, nil }

type inner struct{ N int }

// Wrapped promotes the fields of the struct it embeds.
type Wrapped struct{ inner }

//flowstone:asset
func Wraps(ctx context.Context) (Wrapped, error) { return Wrapped{}, nil }
