package refunds

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/flowstone-go/flowstone"
)

// Days partitions every asset of the pipeline by calendar day (UTC): one
// batch of refunds per day.
var Days = flowstone.Daily("2024-01-01")

// ManualReviewFrom is the amount from which a single request, and
// DailyReviewTotal the day's total from which the whole batch, goes to
// manual review.
const (
	ManualReviewFrom = 500.0
	DailyReviewTotal = 2000.0
)

// Request is one customer's request for a refund.
type Request struct {
	ID       string  `json:"id"`
	Order    string  `json:"order"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
	Reason   string  `json:"reason"`
	// Age is how many days after the purchase the request was made.
	Age int `json:"age"`
}

// Review is the outcome of reviewing a day's requests.
type Review struct {
	By       string   `json:"by"`
	Approved []string `json:"approved"`
	Denied   []Denial `json:"denied,omitempty"`
}

// Denial is a request a review turned down, and why.
type Denial struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// Verdict is what the day's review decided.
type Verdict struct {
	// ReviewedBy is the branch whose review the verdict follows.
	ReviewedBy string    `json:"reviewed_by"`
	Approved   []Request `json:"approved"`
	Denied     []Denial  `json:"denied,omitempty"`
	// Deferred are requests no review decided on in time; tomorrow's run
	// picks them up.
	Deferred []string `json:"deferred,omitempty"`
}

// Batch is the refunds to pay for one day, held at the refund gate until
// finance approves it.
type Batch struct {
	Day   flowstone.Partition `json:"day"`
	Items []Request           `json:"items"`
	Total float64             `json:"total"`
}

// Receipt is the bank's record of a paid batch.
type Receipt struct {
	Day       flowstone.Partition `json:"day"`
	Transfers []Transfer          `json:"transfers"`
	Total     float64             `json:"total"`
}

// RefundRequests collects the day's refund requests from the support desk.
// Here they are faked, deterministically from the partition key, so every
// run of a day sees the same requests; about one day in three has a request
// large enough for manual review.
//
//flowstone:asset partitions=Days retries=3 timeout=1m group=intake
func RefundRequests(ctx context.Context, day flowstone.Partition) ([]Request, error) {
	h := fnv.New64a()
	h.Write([]byte(day))
	rng := rand.New(rand.NewPCG(h.Sum64(), 7))
	reasons := []string{"damaged", "late delivery", "wrong size", "not as described", "changed mind"}
	n := 3 + rng.IntN(6)
	out := make([]Request, n)
	for i := range out {
		amount := 10 + rng.Float64()*190
		if rng.IntN(16) == 0 { // now and then a large one: a sofa, a laptop
			amount = 400 + rng.Float64()*800
		}
		out[i] = Request{
			ID:       fmt.Sprintf("rr-%s-%02d", day, i),
			Order:    fmt.Sprintf("o-%06d", rng.IntN(1_000_000)),
			Customer: fmt.Sprintf("c%03d", rng.IntN(200)),
			Amount:   math.Round(amount*100) / 100,
			Reason:   reasons[rng.IntN(len(reasons))],
			Age:      1 + rng.IntN(75),
		}
	}
	flowstone.AddMetadata(ctx, "requests", n)
	return out, nil
}

// NeedsManualReview reports whether a day's requests go to manual review:
// one of them is ManualReviewFrom or more, or together they reach
// DailyReviewTotal.
func NeedsManualReview(requests []Request) bool {
	total := 0.0
	for _, r := range requests {
		if r.Amount >= ManualReviewFrom {
			return true
		}
		total += r.Amount
	}
	return total >= DailyReviewTotal
}

// Triage routes the day's requests by amount: to manual_review when
// NeedsManualReview says so, to auto_approve otherwise. Should triage fail
// for good, the requests go to manual review (fallback).
//
//flowstone:asset partitions=Days router fallback=manual_review
func Triage(ctx context.Context, refundRequests []Request) (flowstone.Route, error) {
	if NeedsManualReview(refundRequests) {
		return flowstone.RouteTo(AssetManualReview), nil
	}
	return flowstone.RouteTo(AssetAutoApprove), nil
}

// ManualReview applies the review team's rulebook: requests made more than
// 60 days after the purchase are denied, as is a second request for the
// same order.
//
//flowstone:asset partitions=Days routed_from=triage retries=2
func ManualReview(ctx context.Context, refundRequests []Request) (Review, error) {
	rv := Review{By: "manual_review"}
	seen := map[string]bool{}
	for _, r := range refundRequests {
		switch {
		case r.Age > 60:
			rv.Denied = append(rv.Denied, Denial{ID: r.ID, Reason: fmt.Sprintf("requested %d days after purchase (limit 60)", r.Age)})
		case seen[r.Order]:
			rv.Denied = append(rv.Denied, Denial{ID: r.ID, Reason: "order " + r.Order + " already refunded"})
		default:
			rv.Approved = append(rv.Approved, r.ID)
		}
		seen[r.Order] = true
	}
	return rv, nil
}

// AutoApprove approves a day of small requests as they are.
//
//flowstone:asset partitions=Days routed_from=triage
func AutoApprove(ctx context.Context, refundRequests []Request) (Review, error) {
	rv := Review{By: "auto_approve"}
	for _, r := range refundRequests {
		rv.Approved = append(rv.Approved, r.ID)
	}
	return rv, nil
}

// Decision joins the two reviews: exactly one ran (triage skipped the
// other), and its verdict stands. Should the review not finish within ten
// minutes of the run's start, the small requests are approved anyway and
// the large ones deferred to the next run.
//
//flowstone:asset partitions=Days wait=10m
func Decision(ctx context.Context, refundRequests []Request, manualReview, autoApprove flowstone.Outcome[Review]) (Verdict, error) {
	var rv Review
	switch {
	case manualReview.OK():
		rv = manualReview.Value
	case autoApprove.OK():
		rv = autoApprove.Value
	case manualReview.Err != nil && autoApprove.Skipped:
		// Manual review failed or is still going: pay what is small.
		v := Verdict{ReviewedBy: "decision (manual review: " + manualReview.Err.Error() + ")"}
		for _, r := range refundRequests {
			if r.Amount < ManualReviewFrom {
				v.Approved = append(v.Approved, r)
			} else {
				v.Deferred = append(v.Deferred, r.ID)
			}
		}
		return v, nil
	default:
		return Verdict{}, flowstone.Permanent(errors.Join(errors.New("no review to decide from"), manualReview.Err, autoApprove.Err))
	}
	v := Verdict{ReviewedBy: rv.By, Denied: rv.Denied}
	for _, r := range refundRequests {
		if slices.Contains(rv.Approved, r.ID) {
			v.Approved = append(v.Approved, r)
		}
	}
	return v, nil
}

// Refund assembles the day's refund batch. It is a gate: the batch is held
// until someone in finance approves it (refunds approve RUN refund --by ...);
// unanswered for 48 hours, it is rejected and nothing is paid.
//
//flowstone:asset partitions=Days gate gate_timeout=48h on_timeout=reject
func Refund(ctx context.Context, day flowstone.Partition, decision Verdict) (Batch, error) {
	b := Batch{Day: day, Items: decision.Approved}
	for _, r := range decision.Approved {
		b.Total += r.Amount
	}
	b.Total = math.Round(b.Total*100) / 100
	flowstone.AddMetadata(ctx, "total", b.Total)
	return b, nil
}

// Payout pays an approved batch through the bank.
//
//flowstone:asset partitions=Days retries=5 timeout=2m
func Payout(ctx context.Context, refund Batch, bank *Bank) (Receipt, error) {
	rc := Receipt{Day: refund.Day, Total: refund.Total}
	for _, r := range refund.Items {
		tr, err := bank.Transfer(ctx, r.Customer, r.Amount, r.ID)
		if err != nil {
			return Receipt{}, err
		}
		rc.Transfers = append(rc.Transfers, tr)
	}
	flowstone.AddMetadata(ctx, "transfers", len(rc.Transfers))
	return rc, nil
}

// FollowUpCalls has the support team call the customers whose refund was
// large. People make the calls, so it runs in business hours only
// (BusinessHours, a user-defined kind); outside them it is skipped and the
// next run during office hours makes the calls.
//
//flowstone:asset partitions=Days strategy=BusinessHours
func FollowUpCalls(ctx context.Context, payout Receipt) error {
	for _, tr := range payout.Transfers {
		if tr.Amount >= ManualReviewFrom {
			flowstone.Logger(ctx).Info("call customer", "customer", tr.Customer, "amount", tr.Amount, "transfer", tr.ID)
		}
	}
	return nil
}
