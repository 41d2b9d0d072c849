package checkerrors

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

type Revenue struct{ Cents int64 }

type Checker struct{}

//flowstone:asset
func DailyRevenue(ctx context.Context) (Revenue, error) { return Revenue{}, nil }

//flowstone:asset
func Cleanup(ctx context.Context) error { return nil }

//flowstone:check blocking
func NoAsset(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenu
func Misspelled(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue name=Bad-Name blocking=yes severity=fatal sevrity=warn
func Options(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func (c *Checker) Method(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func Generic[T any](ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=cleanup
func NothingToCheck(ctx context.Context) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func NoContext(r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func WrongValue(ctx context.Context, r *Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func NoValue(ctx context.Context) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue
func WrongResult(ctx context.Context, r Revenue) (bool, error) { return false, nil }

//flowstone:check asset=daily_revenue
func BadParams(ctx context.Context, r Revenue, p flowstone.Partition, _ int) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue name=twice
func First(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}

//flowstone:check asset=daily_revenue name=twice
func Second(ctx context.Context, r Revenue) (flowstone.CheckResult, error) {
	return flowstone.CheckResult{}, nil
}
