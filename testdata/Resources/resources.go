package resources

import "context"

type DB struct{}
type OtherDB struct{}

//flowstone:asset
func A(ctx context.Context, db *DB, rates float64) (int, error) { return 0, nil }

//flowstone:asset
func B(ctx context.Context, db *OtherDB, Rates float64) (int, error) { return 0, nil }
