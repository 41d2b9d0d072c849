package signatures

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

//flowstone:asset
func NoContext(n int) (int, error) { return n, nil }

//flowstone:asset
func NoError(ctx context.Context) int { return 0 }

//flowstone:asset
func ThreeResults(ctx context.Context) (int, int, error) { return 0, 0, nil }

//flowstone:asset router
func Router(ctx context.Context) (string, error) { return "", nil }

//flowstone:asset routed_from=router
func Branch(ctx context.Context) error { return nil }

//flowstone:asset
func Undefined(ctx context.Context, db *Database) (Missing, error) { return nil, nil }

//flowstone:asset
func Unnamed(ctx context.Context, _ flowstone.Partition, _ *int) error { return nil }
