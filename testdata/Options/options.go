package options

import "context"

//flowstone:asset partitons=Days retries=3 retries=4 router=yes timeout
func A(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset retries=x priority=9 timeout=-1s queue="a b" tags=a,,b deps=Bad-Key schedule="61 * * * *" name=Bad
func B(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset rate=5/d on_timeout=maybe failure_threshold=2 batch=0 wait=0s schedule=@fortnightly
func C(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset router scatter=a fallback=a
func D(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset fallback=a batch=3 gate_timeout=1h on_timeout=fail
func E(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset gate on_timeout=fail
func F(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset auto=lazy
func G(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset auto fresh=1h auto=eager
func H(ctx context.Context) (int, error) { return 0, nil }
