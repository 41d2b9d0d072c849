package collisions

import "context"

// Resources is declared by hand.
type Resources struct{}

func LoadOrders() {}

//flowstone:asset
func Orders(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset name=orders
func Orders2(ctx context.Context) (int, error) { return 0, nil }

//flowstone:asset name=a_b
func X(ctx context.Context) error { return nil }

//flowstone:asset
func AB(ctx context.Context) error { return nil }
