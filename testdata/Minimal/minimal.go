package minimal

import "context"

//flowstone:asset
func Hello(ctx context.Context) (string, error) { return "hello", nil }
