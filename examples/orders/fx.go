package orders

import (
	"fmt"
	"sync"
)

// FXClient converts amounts between currencies with a fixed in-process rate
// table: deterministic, no network. It is the pipeline's rates resource.
type FXClient struct {
	mu    sync.Mutex
	perUS map[string]float64 // units of a currency per US dollar
	calls int
}

// NewFXClient returns a client with rates for USD, EUR, GBP and JPY.
func NewFXClient() *FXClient {
	return &FXClient{perUS: map[string]float64{"USD": 1, "EUR": 0.92, "GBP": 0.79, "JPY": 151.3}}
}

// Convert converts amount from one currency to another.
func (c *FXClient) Convert(amount float64, from, to string) (float64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	f, ok := c.perUS[from]
	if !ok {
		return 0, fmt.Errorf("fx: unknown currency %q", from)
	}
	t, ok := c.perUS[to]
	if !ok {
		return 0, fmt.Errorf("fx: unknown currency %q", to)
	}
	return amount / f * t, nil
}

// Calls reports how many conversions the client has made.
func (c *FXClient) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}
