package runtime

import (
	"context"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
)

// Freshness is an asset's state against its freshness bound (fresh=).
type Freshness struct {
	Asset string
	Fresh time.Duration
	// Partition is the partition judged: the newest complete one of a
	// time-partitioned asset; empty otherwise.
	Partition flowstone.Partition
	// Materialized is when the judged data was last materialized
	// successfully; zero when never.
	Materialized time.Time
	// Due is when the data must exist by: Materialized+Fresh, or, for a
	// time partition, the end of its window plus Fresh.
	Due     time.Time
	Overdue bool
	// Reason explains Overdue.
	Reason string
}

// Freshness judges, at now, every asset of p that has a freshness bound,
// in topological order. An unpartitioned asset (or one whose partitions
// are not time windows) is overdue when its newest successful
// materialization is older than the bound; a time-partitioned one when its
// newest complete partition has not been materialized within the bound of
// its window's end.
func (e *Engine) Freshness(ctx context.Context, p *Pipeline, now time.Time) ([]Freshness, error) {
	if p == nil {
		return nil, fmt.Errorf("%w: nil pipeline", ErrUnknownPipeline)
	}
	var out []Freshness
	for _, a := range p.assets {
		if a.Fresh <= 0 {
			continue
		}
		f, err := e.freshness(ctx, p, a, now)
		if err != nil {
			return nil, fmt.Errorf("freshness of %s: %w", a.Key, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func (e *Engine) freshness(ctx context.Context, p *Pipeline, a *AssetDef, now time.Time) (Freshness, error) {
	f := Freshness{Asset: a.Key, Fresh: a.Fresh}
	q := e.be.pool()
	if ts, ok := a.Partitions.(flowstone.TimeWindowSet); ok {
		// The newest partition as of now, but not past the clock's: a
		// window that has not ended by the clock is not a partition yet
		// (flowstone.ErrFuturePartition), whatever time is being judged.
		asOf := now
		if clock := time.Now(); asOf.After(clock) {
			asOf = clock
		}
		last, ok := ts.Last(asOf)
		if !ok {
			return f, nil // no complete window yet: nothing can be late
		}
		_, end, err := ts.Window(last)
		if err != nil {
			return f, err
		}
		f.Partition, f.Due = last, end.Add(a.Fresh)
		at, found, err := e.st.NewestSuccess(ctx, q, p.name, a.Key, string(last), false)
		if err != nil {
			return f, err
		}
		if found {
			f.Materialized = micros(at)
			return f, nil
		}
		if now.After(f.Due) {
			f.Overdue = true
			f.Reason = fmt.Sprintf("partition %s not materialized %s after its window ended", last, a.Fresh)
		}
		return f, nil
	}
	at, found, err := e.st.NewestSuccess(ctx, q, p.name, a.Key, "", true)
	if err != nil {
		return f, err
	}
	if !found {
		f.Overdue, f.Reason = true, "never materialized"
		return f, nil
	}
	f.Materialized = micros(at)
	f.Due = f.Materialized.Add(a.Fresh)
	if now.After(f.Due) {
		f.Overdue = true
		f.Reason = fmt.Sprintf("newest materialization is %s old, more than %s", now.Sub(f.Materialized).Round(time.Second), a.Fresh)
	}
	return f, nil
}
