package refunds

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
)

// Transfer is one payment the bank made.
type Transfer struct {
	ID       string  `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
}

// Bank pays refunds. This one is a stand-in for a payment provider's
// client: it makes no calls and derives transfer IDs from the payment, so
// paying the same request twice yields the same transfer (the idempotency
// a real provider offers through an idempotency key).
type Bank struct {
	// Account is the account refunds are paid from.
	Account string
}

// NewBank returns the client of the refunds account.
func NewBank() *Bank { return &Bank{Account: "refunds-eur-01"} }

// Transfer pays amount to customer, once per key.
func (b *Bank) Transfer(ctx context.Context, customer string, amount float64, key string) (Transfer, error) {
	if err := ctx.Err(); err != nil {
		return Transfer{}, err
	}
	if amount <= 0 {
		return Transfer{}, errors.New("bank: amount must be positive")
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s|%s", b.Account, key)
	return Transfer{ID: fmt.Sprintf("tr_%016x", h.Sum64()), Customer: customer, Amount: amount}, nil
}
