package scatter

import "context"

type Customer struct{}

//flowstone:asset
func Customers(ctx context.Context) ([]Customer, error) { return nil, nil }

//flowstone:asset
func Count(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset scatter=count
func FromCount(ctx context.Context, n int) error { return nil }

//flowstone:asset scatter=customers
func NoItem(ctx context.Context) error { return nil }

//flowstone:asset scatter=customers
func TwoItems(ctx context.Context, a Customer, b Customer) error { return nil }

//flowstone:asset scatter=self_scatter
func SelfScatter(ctx context.Context) ([]int, error) { return nil, nil }

//flowstone:asset scatter=nothing
func FromNothing(ctx context.Context) error { return nil }

//flowstone:asset
func Nothing(ctx context.Context) error { return nil }
