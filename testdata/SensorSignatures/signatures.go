package sensorsignatures

import (
	"context"
	"time"

	"github.com/flowstone-go/flowstone"
)

type DB struct{}
type OtherDB struct{}

type Poller struct{}

//flowstone:asset
func RawOrders(ctx context.Context, db *DB) (int, error) { return 0, nil }

//flowstone:sensor every=1m targets=raw_orders
func (p *Poller) Poll(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func Generic[T any](ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func NoContext(cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func NoCursor(ctx context.Context) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func IntCursor(ctx context.Context, cursor int) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func ResourceFirst(ctx context.Context, apiKey string, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func ErrorOnly(ctx context.Context, cursor string) error { return nil }

//flowstone:sensor every=1m targets=raw_orders
func WrongResult(ctx context.Context, cursor string) ([]flowstone.RunRequest, error) { return nil, nil }

//flowstone:sensor every=1m targets=raw_orders
func NoResults(ctx context.Context, cursor string) {}

//flowstone:sensor every=1m targets=raw_orders
func BadParams(ctx context.Context, cursor string, p flowstone.Partition, rawOrders int, _ *DB, late flowstone.Outcome[int], opts ...time.Duration) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

//flowstone:sensor every=1m targets=raw_orders
func OtherDatabase(ctx context.Context, cursor string, db *OtherDB, Db *DB, timeout Undefined) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

// SensorClash is declared by the user, and the sensor Clash would generate it.
var SensorClash = 1

//flowstone:sensor every=1m targets=raw_orders
func Clash(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}

// An asset named SensorWatch has the wrapper runSensorWatch, which the
// sensor Watch would generate too.
//
//flowstone:asset
func SensorWatch(ctx context.Context) (int, error) { return 0, nil }

//flowstone:sensor every=1m targets=raw_orders
func Watch(ctx context.Context, cursor string) (flowstone.SensorResult, error) {
	return flowstone.SensorResult{}, nil
}
