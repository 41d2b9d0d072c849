package runtime

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

// ValueRef addresses one stored value: the materialization that produced it.
type ValueRef struct {
	Pipeline        string
	Asset           string
	Partition       flowstone.Partition
	Materialization string
}

// IOManager stores and loads asset values outside the engine's database.
// An asset without io= keeps its value in the database, inside the same
// transaction that records its materialization. Store is called before that
// transaction and must be idempotent for a ref; Load decodes into into, a
// pointer to the asset's Go type, and fails rather than leave a zero value.
type IOManager interface {
	Store(ctx context.Context, ref ValueRef, value any) error
	Load(ctx context.Context, ref ValueRef, into any) error
}
