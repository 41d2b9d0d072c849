package routers

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

//flowstone:asset router fallback=other
func Lonely(ctx context.Context) (flowstone.Route, error) { return flowstone.Route{}, nil }

//flowstone:asset router fallback=elsewhere
func Triage(ctx context.Context) (flowstone.Route, error) { return flowstone.Route{}, nil }

//flowstone:asset routed_from=triage
func Branch(ctx context.Context) error { return nil }

//flowstone:asset routed_from=other
func NotRouted(ctx context.Context) error { return nil }

//flowstone:asset
func Other(ctx context.Context) error { return nil }

//flowstone:asset
func Elsewhere(ctx context.Context) error { return nil }

//flowstone:asset routed_from=trage
func Typo(ctx context.Context) error { return nil }
