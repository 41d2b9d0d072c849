package enrich

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
)

// ErrNoAccount is the CRM's answer for a company it does not know; it
// does not change on retry.
var ErrNoAccount = errors.New("no CRM account")

// ErrUnavailable is the CRM's transient failure; the next call succeeds.
var ErrUnavailable = errors.New("CRM unavailable (503), try again")

// Account is what the CRM knows about a company.
type Account struct {
	Company   string
	Industry  string
	Employees int
}

// CRM is a fake CRM client: deterministic, in process, no network. It
// knows the companies of the domains records are generated with (but
// UnknownDomain), fails for good on any other domain, and fails once for
// each email that Flaky selects.
type CRM struct {
	// Latency is how long one lookup takes.
	Latency time.Duration

	accounts map[string]Account // by email domain

	mu    sync.Mutex
	tried map[string]bool // emails that already failed once
}

// NewCRM returns a CRM client whose lookups take 2ms.
func NewCRM() *CRM {
	return &CRM{
		Latency: 2 * time.Millisecond,
		accounts: map[string]Account{
			"acme.com":          {"Acme Corporation", "manufacturing", 4200},
			"globex.com":        {"Globex", "energy", 12000},
			"initech.com":       {"Initech", "software", 350},
			"umbrella.com":      {"Umbrella", "pharma", 56000},
			"hooli.com":         {"Hooli", "software", 9100},
			"piedpiper.com":     {"Pied Piper", "software", 42},
			"vandelay.com":      {"Vandelay Industries", "import/export", 18},
			"dundermifflin.com": {"Dunder Mifflin", "paper", 160},
		},
		tried: map[string]bool{},
	}
}

// Flaky reports whether the CRM fails the first lookup of email: about one
// email in a hundred, chosen by hash so every run agrees.
func Flaky(email string) bool {
	h := fnv.New32a()
	h.Write([]byte(email))
	return h.Sum32()%100 == 7
}

// Lookup returns the account of email's company. An unknown domain is a
// permanent failure (flowstone.Permanent): retrying cannot help.
func (c *CRM) Lookup(ctx context.Context, email string) (Account, error) {
	if c.Latency > 0 {
		select {
		case <-time.After(c.Latency):
		case <-ctx.Done():
			return Account{}, ctx.Err()
		}
	}
	_, domain, _ := strings.Cut(email, "@")
	acct, ok := c.accounts[domain]
	if !ok {
		return Account{}, flowstone.Permanent(fmt.Errorf("%w for domain %s", ErrNoAccount, domain))
	}
	if Flaky(email) {
		c.mu.Lock()
		first := !c.tried[email]
		c.tried[email] = true
		c.mu.Unlock()
		if first {
			return Account{}, ErrUnavailable
		}
	}
	return acct, nil
}
