package flowstone

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Partition is the key of one partition of an asset: "2024-01-02",
// "2024-01-02T15", "eu", "2024-01-02|eu". An unpartitioned asset has the
// single key "".
type Partition string

// ErrInvalidPartition is matched (errors.Is) by every error a partition set
// returns for a key it does not contain.
var ErrInvalidPartition = errors.New("invalid partition")

// ErrFuturePartition is matched, with ErrInvalidPartition, by the error for
// a key of a time set past its newest partition: a window that has not
// ended yet (see EndOffset).
var ErrFuturePartition = errors.New("its window has not ended yet")

// PartitionSet is the set of partition keys of an asset. Sets are values
// declared at package level and named by the partitions= option.
type PartitionSet interface {
	// Kind names the set's kind: daily, hourly, weekly, monthly, static,
	// dynamic or multi.
	Kind() string
	// Validate returns nil when key belongs to the set, or an error matching
	// ErrInvalidPartition that shows a valid example.
	Validate(key Partition) error
	// Example returns a key of the set, for error messages and help text.
	Example() Partition
	// Err reports a mistake in the set's own declaration (a malformed start
	// date, an unknown time zone); the runtime refuses a pipeline whose sets
	// have one.
	Err() error
}

// TimeOption adjusts a time-window partition set.
type TimeOption func(*timeSet)

// End bounds a time set: keys whose window starts at or after end (a key in
// the set's own format) are outside it. Without End the set is open-ended.
func End(end string) TimeOption {
	return func(s *timeSet) {
		t, err := s.parse(end)
		if err != nil {
			s.err = errors.Join(s.err, fmt.Errorf("end %q: %w", end, err))
			return
		}
		s.end = t
	}
}

// EndOffset lets a time set reach n windows past its newest complete
// window. Without it (n = 0) a time set ends at the newest complete
// window: yesterday for a daily set, the previous hour for an hourly one;
// the window still in progress, and later ones, are refused with
// ErrFuturePartition. EndOffset(1) admits the window in progress (today's
// partition of a daily set). End still bounds the set when it comes
// first.
func EndOffset(n int) TimeOption {
	return func(s *timeSet) { s.offset = n }
}

// InLocation sets the time zone (an IANA name such as "Europe/Berlin") in
// which windows start. The default is UTC.
func InLocation(name string) TimeOption {
	return func(s *timeSet) {
		loc, err := time.LoadLocation(name)
		if err != nil {
			s.err = errors.Join(s.err, fmt.Errorf("time zone %q: %w", name, err))
			return
		}
		s.loc = loc
	}
}

// Daily returns the set of days from start ("2024-01-01"), keyed like
// "2024-01-02".
func Daily(start string, opts ...TimeOption) PartitionSet {
	return newTimeSet("daily", "2006-01-02", start, opts)
}

// Hourly returns the set of hours from start ("2024-01-01T00"), keyed like
// "2024-01-02T15".
func Hourly(start string, opts ...TimeOption) PartitionSet {
	return newTimeSet("hourly", "2006-01-02T15", start, opts)
}

// Weekly returns the set of weeks (Monday to Sunday) from start, keyed by the
// Monday's date ("2024-01-01").
func Weekly(start string, opts ...TimeOption) PartitionSet {
	return newTimeSet("weekly", "2006-01-02", start, opts)
}

// Monthly returns the set of months from start, keyed by the first day's
// date ("2024-02-01").
func Monthly(start string, opts ...TimeOption) PartitionSet {
	return newTimeSet("monthly", "2006-01-02", start, opts)
}

// TimeWindowSet is a partition set whose keys are consecutive time windows.
type TimeWindowSet interface {
	PartitionSet
	// Window returns the start and end of key's window.
	Window(key Partition) (start, end time.Time, err error)
	// Key returns the key of the window containing t.
	Key(t time.Time) Partition
	// Previous returns the key before key, and false for the first key.
	Previous(key Partition) (Partition, bool)
	// Next returns the key after key, and false past the set's end.
	Next(key Partition) (Partition, bool)
	// Location is the time zone windows start in.
	Location() *time.Location
	// Last returns the set's newest key at time now: the newest complete
	// window (moved by EndOffset), or the set's End; false when the set
	// has no key yet.
	Last(now time.Time) (Partition, bool)
}

type timeSet struct {
	kind     string
	layout   string
	loc      *time.Location
	rawStart string
	start    time.Time
	end      time.Time // zero: bounded by the clock alone
	offset   int       // windows past the newest complete one (EndOffset)
	err      error
}

func newTimeSet(kind, layout, start string, opts []TimeOption) *timeSet {
	s := &timeSet{kind: kind, layout: layout, loc: time.UTC, rawStart: start}
	for _, o := range opts {
		o(s)
	}
	t, err := s.parse(start)
	if err != nil {
		s.err = errors.Join(s.err, fmt.Errorf("%s set start %q: %w", kind, start, err))
	} else {
		s.start = t
	}
	return s
}

func (s *timeSet) Kind() string             { return s.kind }
func (s *timeSet) Err() error               { return s.err }
func (s *timeSet) Location() *time.Location { return s.loc }

func (s *timeSet) parse(key string) (time.Time, error) {
	t, err := time.ParseInLocation(s.layout, key, s.loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("want the form %s", s.layout)
	}
	t = s.earliest(t)
	if string(s.format(t)) != key {
		return time.Time{}, fmt.Errorf("%s does not exist in %s (the clocks skip it)", key, s.loc)
	}
	if s.floor(t) != t {
		switch s.kind {
		case "weekly":
			return time.Time{}, fmt.Errorf("a weekly key is a Monday")
		case "monthly":
			return time.Time{}, fmt.Errorf("a monthly key is the first day of a month")
		}
	}
	return t, nil
}

// floor returns the start of the window containing t, in the set's zone.
func (s *timeSet) floor(t time.Time) time.Time {
	t = t.In(s.loc)
	switch s.kind {
	case "hourly":
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), 0, 0, 0, s.loc)
	case "weekly":
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, s.loc)
		back := (int(d.Weekday()) + 6) % 7 // days since Monday
		return d.AddDate(0, 0, -back)
	case "monthly":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, s.loc)
	default:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, s.loc)
	}
}

// earliest returns the first instant whose key is t's: on the day clocks
// fall back, the repeated hour has one key, and its window starts at the
// first of the two.
func (s *timeSet) earliest(t time.Time) time.Time {
	if s.kind != "hourly" {
		return t
	}
	if e := t.Add(-time.Hour); s.format(e) == s.format(t) {
		return e
	}
	return t
}

func (s *timeSet) step(t time.Time, n int) time.Time {
	switch s.kind {
	case "hourly":
		// Wall-clock hours, one key each: the day clocks spring forward has
		// 23 keys; the day they fall back has 24, the repeated hour's key
		// covering two hours.
		k, u := s.format(t), t
		for i := 0; i < max(n, -n); i++ {
			for s.format(u) == k {
				u = u.Add(time.Duration(sign(n)) * time.Hour)
			}
			k = s.format(u)
		}
		return s.earliest(s.floor(u))
	case "weekly":
		return t.AddDate(0, 0, 7*n)
	case "monthly":
		return t.AddDate(0, n, 0)
	default:
		return t.AddDate(0, 0, n)
	}
}

func (s *timeSet) format(t time.Time) Partition { return Partition(t.In(s.loc).Format(s.layout)) }

func (s *timeSet) Example() Partition {
	if s.err != nil || s.start.IsZero() {
		return Partition(s.rawStart)
	}
	return s.format(s.start)
}

func (s *timeSet) Validate(key Partition) error {
	if s.err != nil {
		return s.err
	}
	if err := validPartitionKey(key); err != nil {
		return err
	}
	t, err := s.parse(string(key))
	if err != nil {
		return fmt.Errorf("%w %q for %s set: %v (e.g. %q)", ErrInvalidPartition, key, s.kind, err, s.Example())
	}
	if t.Before(s.start) {
		return fmt.Errorf("%w %q: before the %s set's start %q", ErrInvalidPartition, key, s.kind, s.Example())
	}
	if !s.end.IsZero() && !t.Before(s.end) {
		return fmt.Errorf("%w %q: at or after the %s set's end %q", ErrInvalidPartition, key, s.kind, s.format(s.end))
	}
	if limit := s.limit(time.Now()); !t.Before(limit) {
		last := "none yet"
		if l, ok := s.Last(time.Now()); ok {
			last = strconv.Quote(string(l))
		}
		return fmt.Errorf("%w %q: %w: the %s set's newest partition is %s (flowstone.EndOffset(n) reaches n windows further)",
			ErrInvalidPartition, key, ErrFuturePartition, s.kind, last)
	}
	return nil
}

// limit is the start of the first window past the set at time now: the
// window in progress, moved by the end offset.
func (s *timeSet) limit(now time.Time) time.Time {
	return s.step(s.earliest(s.floor(now)), s.offset)
}

func (s *timeSet) Last(now time.Time) (Partition, bool) {
	end := s.limit(now)
	if !s.end.IsZero() && s.end.Before(end) {
		end = s.end
	}
	if s.err != nil || !s.start.Before(end) {
		return "", false
	}
	return s.format(s.step(end, -1)), true
}

func (s *timeSet) Window(key Partition) (time.Time, time.Time, error) {
	if err := s.Validate(key); err != nil {
		return time.Time{}, time.Time{}, err
	}
	t, _ := s.parse(string(key))
	return t, s.step(t, 1), nil
}

func (s *timeSet) Key(t time.Time) Partition { return s.format(s.floor(t)) }

func (s *timeSet) Previous(key Partition) (Partition, bool) {
	t, err := s.parse(string(key))
	if err != nil || !t.After(s.start) {
		return "", false
	}
	return s.format(s.step(t, -1)), true
}

func (s *timeSet) Next(key Partition) (Partition, bool) {
	t, err := s.parse(string(key))
	if err != nil {
		return "", false
	}
	n := s.step(t, 1)
	if !s.end.IsZero() && !n.Before(s.end) || !n.Before(s.limit(time.Now())) {
		return "", false
	}
	return s.format(n), true
}

// Static returns the set of exactly the given keys.
func Static(keys ...string) PartitionSet {
	s := &staticSet{keys: append([]string(nil), keys...)}
	seen := map[string]bool{}
	for _, k := range keys {
		switch {
		case k == "":
			s.err = errors.Join(s.err, errors.New("static set: empty key"))
		case strings.Contains(k, "|"):
			s.err = errors.Join(s.err, fmt.Errorf("static set: key %q contains '|'", k))
		case ValidateKey("partition key", k) != nil:
			s.err = errors.Join(s.err, fmt.Errorf("static set: %w", ValidateKey("partition key", k)))
		case seen[k]:
			s.err = errors.Join(s.err, fmt.Errorf("static set: duplicate key %q", k))
		}
		seen[k] = true
	}
	if len(keys) == 0 {
		s.err = errors.New("static set: no keys")
	}
	return s
}

type staticSet struct {
	keys []string
	err  error
}

func (s *staticSet) Kind() string { return "static" }
func (s *staticSet) Err() error   { return s.err }

// Keys returns the set's keys in declaration order.
func (s *staticSet) Keys() []Partition {
	out := make([]Partition, len(s.keys))
	for i, k := range s.keys {
		out[i] = Partition(k)
	}
	return out
}

func (s *staticSet) Example() Partition {
	if len(s.keys) == 0 {
		return ""
	}
	return Partition(s.keys[0])
}

func (s *staticSet) Validate(key Partition) error {
	if s.err != nil {
		return s.err
	}
	if err := validPartitionKey(key); err != nil {
		return err
	}
	if slices.Contains(s.keys, string(key)) {
		return nil
	}
	return fmt.Errorf("%w %q: not one of %s", ErrInvalidPartition, key, strings.Join(s.keys, ", "))
}

// Dynamic returns a set whose keys are added and removed at run time through
// the engine; name identifies the set in the database. The set's keys
// belong to its pipeline: two pipelines with a set named "customers" each
// have their own keys, unless both declare the set Shared.
func Dynamic(name string, opts ...DynamicOption) PartitionSet {
	s := &DynamicSet{name: name}
	if name == "" {
		s.err = errors.New("dynamic set: empty name")
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// DynamicOption adjusts a dynamic partition set.
type DynamicOption func(*DynamicSet)

// Shared makes a dynamic set's keys common to every pipeline that declares
// a shared set of that name, instead of its own pipeline's.
func Shared() DynamicOption {
	return func(s *DynamicSet) { s.shared = true }
}

// DynamicSet is the set Dynamic returns. Its membership lives in the
// engine's database, so Validate only checks the key's form; the runtime
// checks membership.
type DynamicSet struct {
	name   string
	shared bool
	err    error
}

// Name is the set's name in the database.
func (s *DynamicSet) Name() string { return s.name }

// Shared reports whether the set's keys are common to every pipeline that
// declares it Shared, rather than its own pipeline's.
func (s *DynamicSet) Shared() bool { return s.shared }

func (s *DynamicSet) Kind() string       { return "dynamic" }
func (s *DynamicSet) Err() error         { return s.err }
func (s *DynamicSet) Example() Partition { return "customer-42" }

func (s *DynamicSet) Validate(key Partition) error {
	if s.err != nil {
		return s.err
	}
	if err := validPartitionKey(key); err != nil {
		return fmt.Errorf("dynamic set %s: %w", s.name, err)
	}
	if key == "" || strings.Contains(string(key), "|") {
		return fmt.Errorf("%w %q for dynamic set %s: keys are non-empty and contain no '|'", ErrInvalidPartition, key, s.name)
	}
	return nil
}

// Multi returns the product of sets: keys join one key of each set with '|'
// in order ("2024-01-02|eu").
func Multi(sets ...PartitionSet) PartitionSet {
	m := &multiSet{sets: sets}
	if len(sets) < 2 {
		m.err = errors.New("multi set: needs at least two sets")
	}
	for _, s := range sets {
		if s == nil {
			m.err = errors.Join(m.err, errors.New("multi set: nil set"))
			continue
		}
		m.err = errors.Join(m.err, s.Err())
	}
	return m
}

type multiSet struct {
	sets []PartitionSet
	err  error
}

func (m *multiSet) Kind() string { return "multi" }
func (m *multiSet) Err() error   { return m.err }

// Dimensions returns the sets the product is made of.
func (m *multiSet) Dimensions() []PartitionSet { return m.sets }

func (m *multiSet) Example() Partition {
	parts := make([]string, len(m.sets))
	for i, s := range m.sets {
		if s != nil {
			parts[i] = string(s.Example())
		}
	}
	return Partition(strings.Join(parts, "|"))
}

func (m *multiSet) Validate(key Partition) error {
	if m.err != nil {
		return m.err
	}
	if err := validPartitionKey(key); err != nil {
		return err
	}
	parts := strings.Split(string(key), "|")
	if len(parts) != len(m.sets) {
		return fmt.Errorf("%w %q: a multi key has %d parts joined by '|' (e.g. %q)", ErrInvalidPartition, key, len(m.sets), m.Example())
	}
	for i, s := range m.sets {
		if err := s.Validate(Partition(parts[i])); err != nil {
			return fmt.Errorf("%w %q: part %d: %v", ErrInvalidPartition, key, i+1, err)
		}
	}
	return nil
}

func sign(n int) int {
	if n < 0 {
		return -1
	}
	return 1
}
