package enrich

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/flowstone-go/flowstone"
)

// RecordCount is how many customer records Records generates.
const RecordCount = 3000

// UnknownDomain is the email domain of the records the CRM has no account
// for: every 97th record, 31 of RecordCount (about 1%).
const UnknownDomain = "example.invalid"

// Record is one customer record as the sign-up form stored it.
type Record struct {
	ID      int    `json:"id"`
	Name    string `json:"name"`
	Email   string `json:"email"`
	Country string `json:"country"`
}

// ScatterKey identifies the record among its scatter's items: its email,
// unique across the records.
func (r Record) ScatterKey() string { return r.Email }

// Enriched is a record with what the CRM knows about its company.
type Enriched struct {
	Email     string `json:"email"`
	Name      string `json:"name"`
	Country   string `json:"country"`
	Company   string `json:"company"`
	Industry  string `json:"industry"`
	Employees int    `json:"employees"`
	// Tier is the sales segment of the company's size: enterprise,
	// mid-market or smb.
	Tier string `json:"tier"`
}

// Segment is one tier's enriched customers.
type Segment struct {
	Tier      string         `json:"tier"`
	Customers int            `json:"customers"`
	Countries map[string]int `json:"countries"`
}

// Failure is one record the CRM could not enrich.
type Failure struct {
	Email string `json:"email"`
	Error string `json:"error"`
}

// QualityReport says how the enrichment went.
type QualityReport struct {
	Total    int       `json:"total"`
	Enriched int       `json:"enriched"`
	Failures []Failure `json:"failures"`
}

// Records generates the customer records. They are faked, deterministically,
// so every run and every process agrees on them.
//
//flowstone:asset group=ingest
func Records(ctx context.Context) ([]Record, error) {
	rng := rand.New(rand.NewPCG(2024, 3))
	first := []string{"ana", "ben", "chloe", "dev", "eva", "femi", "gus", "hana", "ivan", "jun", "kira", "leo"}
	last := []string{"silva", "meyer", "okafor", "tanaka", "novak", "haddad", "larsen", "moreau"}
	domains := []string{"acme.com", "globex.com", "initech.com", "umbrella.com", "hooli.com", "piedpiper.com", "vandelay.com", "dundermifflin.com"}
	countries := []string{"DE", "FR", "GB", "NG", "JP", "US", "BR", "PL"}
	out := make([]Record, RecordCount)
	for i := range out {
		f, l := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
		domain := domains[rng.IntN(len(domains))]
		if i%97 == 42 {
			domain = UnknownDomain
		}
		out[i] = Record{
			ID:      i + 1,
			Name:    strings.ToUpper(f[:1]) + f[1:] + " " + strings.ToUpper(l[:1]) + l[1:],
			Email:   fmt.Sprintf("%s.%s.%d@%s", f, l, i+1, domain),
			Country: countries[rng.IntN(len(countries))],
		}
	}
	return out, nil
}

// Enrich looks one record's company up in the CRM. It runs once per record,
// 50 records per job, at most 200 records at once across all processes;
// each record gets two retries, and the run fails if more than 2% of the
// records fail.
//
//flowstone:asset name=enriched scatter=records batch=50 max_concurrent=200 failure_threshold=0.02 retries=2 group=enrich
func Enrich(ctx context.Context, record Record, crm *CRM) (Enriched, error) {
	acct, err := crm.Lookup(ctx, record.Email)
	if err != nil {
		return Enriched{}, fmt.Errorf("%s: %w", record.Email, err)
	}
	return Enriched{
		Email:     record.Email,
		Name:      record.Name,
		Country:   record.Country,
		Company:   acct.Company,
		Industry:  acct.Industry,
		Employees: acct.Employees,
		Tier:      tier(acct.Employees),
	}, nil
}

func tier(employees int) string {
	switch {
	case employees >= 1000:
		return "enterprise"
	case employees >= 100:
		return "mid-market"
	}
	return "smb"
}

// Segments counts the enriched customers per tier and country. It receives
// only the records the CRM enriched, in the records' order.
//
//flowstone:asset group=enrich
func Segments(ctx context.Context, enriched []Enriched) ([]Segment, error) {
	by := map[string]*Segment{}
	for _, e := range enriched {
		s := by[e.Tier]
		if s == nil {
			s = &Segment{Tier: e.Tier, Countries: map[string]int{}}
			by[e.Tier] = s
		}
		s.Customers++
		s.Countries[e.Country]++
	}
	out := make([]Segment, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tier < out[j].Tier })
	return out, nil
}

// Quality lists the records the CRM could not enrich. It sees every
// record's outcome, in the records' order, so it can pair each with its
// record.
//
//flowstone:asset group=enrich
func Quality(ctx context.Context, records []Record, enriched []flowstone.Outcome[Enriched]) (QualityReport, error) {
	if len(records) != len(enriched) {
		return QualityReport{}, fmt.Errorf("%d records but %d outcomes", len(records), len(enriched))
	}
	q := QualityReport{Total: len(records), Failures: []Failure{}}
	for i, o := range enriched {
		switch {
		case o.OK():
			q.Enriched++
		case o.Skipped:
			q.Failures = append(q.Failures, Failure{Email: records[i].Email, Error: "not run"})
		default:
			q.Failures = append(q.Failures, Failure{Email: records[i].Email, Error: o.Err.Error()})
		}
	}
	return q, nil
}
