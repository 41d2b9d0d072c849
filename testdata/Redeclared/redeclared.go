package redeclared

import "context"

// Quality is a type, and the asset below takes its name.
type Quality struct{ Score int }

//flowstone:asset
func Quality(ctx context.Context) (int, error) { return 1, nil }
