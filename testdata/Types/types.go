// Package types spells types from other packages, anonymous types, and
// parameter names that clash with the wrapper's own.
package types

import (
	"context"
	"math/big"
	"time"

	"github.com/flowstone-go/flowstone"
)

type Window struct{ From, To time.Time }

// In has a key that is also a wrapper parameter name.
//
//flowstone:asset
func In(_ context.Context) (map[string]*big.Int, error) { return nil, nil }

//flowstone:asset
func Err(ctx context.Context) (struct {
	N    int `json:"n"`
	Seen []time.Duration
}, error) {
	return struct {
		N    int `json:"n"`
		Seen []time.Duration
	}{}, nil
}

//flowstone:asset timeout=1500ms
func Win(ctx context.Context, in map[string]*big.Int, err struct {
	N    int `json:"n"`
	Seen []time.Duration
}, clock func() time.Time, events chan<- string, _ flowstone.Partition) (*Window, error) {
	return nil, nil
}

//flowstone:asset name=last
func lastWindow(ctx context.Context, win *Window, sink interface{ Put(string) error }) error {
	return nil
}
