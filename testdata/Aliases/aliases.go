package aliases

import (
	"context"

	"github.com/flowstone-go/flowstone/testdata/Aliases/other"
)

//flowstone:asset
func Hidden(ctx context.Context) (other.Opaque, error) { return other.Opaque{}, nil }

//flowstone:asset
func Reader(ctx context.Context, thing other.Opaque) error { return nil }
