// Package placement puts directives where they do not belong.
//
//flowstone:pipeline name=Bad-Name colour=red
package placement

import "context"

//flowstone:asset
var NotAFunc = 1

//flowstone:config
func NotAType() {}

type T struct{}

// Method is not a top-level function.
//
//flowstone:asset
func (T) Method(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset
func Generic[X any](ctx context.Context) (X, error) {
	var x X
	return x, nil
}

// Twice carries two directives.
//
//flowstone:asset
//flowstone:asset retries=1
func Twice(ctx context.Context) (int, error) {
	//flowstone:pipeline name=inner
	return 0, nil
}

//flowstone:config retries=1
type Cfg struct{}

//flowstone:config
type Cfg2 struct{}

//flowstone:config
type GenericCfg[X any] struct{ X X }

//flowstone:asset
func Variadic(ctx context.Context, names ...string) (int, error) { return 0, nil }
