// Package scheduleconfignotype names a config default without a config
// type.
package scheduleconfignotype

import "context"

var Defaults = 1

//flowstone:asset schedule="@daily" config=Defaults
func Rates(ctx context.Context) (int, error) { return 0, nil }
