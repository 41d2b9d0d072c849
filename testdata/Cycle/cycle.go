package cycle

import "context"

//flowstone:asset
func A(ctx context.Context, c int) (int, error) { return 0, nil }

//flowstone:asset
func B(ctx context.Context, a int) (int, error) { return 0, nil }

//flowstone:asset deps=b
func C(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset deps=e
func D(ctx context.Context) error { return nil }

//flowstone:asset deps=d
func E(ctx context.Context) error { return nil }

//flowstone:asset
func Fine(ctx context.Context) error { return nil }
