package refunds

import (
	"context"
	"fmt"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/strategy"
)

// BusinessHours is the kind of the assets that people act on: they run
// from 09:00 to 17:00 UTC, Monday to Friday, and are skipped otherwise.
// Assets use it with strategy=BusinessHours.
var BusinessHours = BusinessHoursOnly{Open: 9, Close: 17, Zone: "UTC"}

// BusinessHoursOnly is a user-defined asset kind, written outside the
// strategy package: it runs the asset like strategy.Standard during
// business hours, on weekdays, and records it skipped otherwise. A skipped
// asset does not fail its run; its dependents that require it are skipped
// too, and the next run materializes it.
type BusinessHoursOnly struct {
	// Open and Close are the hours (0-24) between which the asset runs:
	// Open <= hour < Close, in Zone.
	Open, Close int
	// Zone is an IANA time zone name; empty means UTC.
	Zone string
	// Weekends, when true, runs the asset on Saturdays and Sundays too.
	Weekends bool
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
}

// Run implements strategy.Strategy.
func (b BusinessHoursOnly) Run(ctx context.Context, t strategy.Task) (strategy.Result, error) {
	open, why, err := b.isOpen()
	if err != nil {
		return strategy.Result{}, flowstone.Permanent(err)
	}
	if !open {
		return strategy.Skip(why), nil
	}
	return strategy.Standard{}.Run(ctx, t)
}

// isOpen reports whether now is within business hours, and if not why.
func (b BusinessHoursOnly) isOpen() (bool, string, error) {
	loc := time.UTC
	if b.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(b.Zone); err != nil {
			return false, "", fmt.Errorf("business hours: %w", err)
		}
	}
	if b.Open < 0 || b.Close > 24 || b.Open >= b.Close {
		return false, "", fmt.Errorf("business hours %d-%d: want 0 <= Open < Close <= 24", b.Open, b.Close)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	t := now().In(loc)
	hours := fmt.Sprintf("%02d:00-%02d:00 %s", b.Open, b.Close, loc)
	if wd := t.Weekday(); !b.Weekends && (wd == time.Saturday || wd == time.Sunday) {
		return false, fmt.Sprintf("outside business hours: %s is a %s (open %s, weekdays)", t.Format("2006-01-02"), wd, hours), nil
	}
	if h := t.Hour(); h < b.Open || h >= b.Close {
		return false, fmt.Sprintf("outside business hours: %s (open %s)", t.Format("15:04 MST"), hours), nil
	}
	return true, "", nil
}
