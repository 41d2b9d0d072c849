// Package kinds uses every built-in asset kind.
package kinds

import (
	"context"

	"github.com/flowstone-go/flowstone"
)

type Order struct{ Total float64 }
type Review struct{ OK bool }
type Verdict struct{ Approved bool }
type Refund struct{ Amount float64 }
type Customer struct{ ID string }
type Profile struct{ Score int }
type CRMClient struct{}

//flowstone:asset
func CleanOrders(ctx context.Context) ([]Order, error) { return nil, nil }

//flowstone:asset router fallback=manual_review
func Triage(ctx context.Context, cleanOrders []Order) (flowstone.Route, error) {
	return flowstone.RouteTo(AssetAutoApprove), nil
}

//flowstone:asset routed_from=triage
func ManualReview(ctx context.Context, cleanOrders []Order) (Review, error) { return Review{}, nil }

//flowstone:asset routed_from=triage
func AutoApprove(ctx context.Context, cleanOrders []Order) (Review, error) { return Review{}, nil }

// Decision is a join.
//
//flowstone:asset wait=10m
func Decision(ctx context.Context, manualReview, autoApprove flowstone.Outcome[Review]) (Verdict, error) {
	return Verdict{}, nil
}

// Tolerant is a join selected by its Outcome parameter alone.
//
//flowstone:asset
func Tolerant(ctx context.Context, decision flowstone.Outcome[Verdict]) error { return nil }

//flowstone:asset gate gate_timeout=48h on_timeout=reject
func RefundRequest(ctx context.Context, decision Verdict) (Refund, error) { return Refund{}, nil }

//flowstone:asset
func Customers(ctx context.Context) ([]Customer, error) { return nil, nil }

//flowstone:asset scatter=customers batch=100 max_concurrent=8 rate=30/m failure_threshold=0.01
func Profiles(ctx context.Context, customer Customer, crm *CRMClient) (Profile, error) {
	return Profile{}, nil
}

//flowstone:asset
func Summary(ctx context.Context, profiles []Profile) (int, error) { return len(profiles), nil }

//flowstone:asset
func Audit(ctx context.Context, profiles []flowstone.Outcome[Profile]) (int, error) {
	return len(profiles), nil
}
