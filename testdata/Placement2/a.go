//flowstone:pipeline name=one
package placement2

import "context"

//flowstone:asset
func A(ctx context.Context) (int, error) { return 0, nil }
