// Package configroundtrip has a config type JSON would store as {}.
package configroundtrip

import "context"

// Settings keeps its fields to itself.
//
//flowstone:config
type Settings struct {
	currency string
}

//flowstone:asset
func Rates(ctx context.Context, s Settings) (map[string]float64, error) { return nil, nil }
