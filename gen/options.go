package gen

import (
	"fmt"
	"go/token"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/internal/cronexpr"
	"github.com/flowstone-go/flowstone/strategy"
)

// optionTable is the grammar of //flowstone:asset: the common options plus
// every option each strategy spec declares. It is built from the strategy
// package, so a new kind adds options without touching the generator.
type optionTable struct {
	byName map[string]optEntry
	names  []string // sorted, for suggestions
	specs  []strategy.Spec
}

// optEntry is one option and the kind that declares it.
type optEntry struct {
	strategy.Option
	spec int // index into optionTable.specs; -1 for a common option
}

func newOptionTable() (*optionTable, error) {
	t := &optionTable{byName: map[string]optEntry{}, specs: strategy.Specs()}
	add := func(o strategy.Option, spec int) error {
		if prev, dup := t.byName[o.Name]; dup {
			return fmt.Errorf("strategy option tables declare %q twice (specs %d and %d)", o.Name, prev.spec, spec)
		}
		t.byName[o.Name] = optEntry{Option: o, spec: spec}
		t.names = append(t.names, o.Name)
		return nil
	}
	for _, o := range strategy.CommonOptions() {
		if err := add(o, -1); err != nil {
			return nil, err
		}
	}
	for i, s := range t.specs {
		for _, o := range s.Options {
			if err := add(o, i); err != nil {
				return nil, err
			}
		}
		for _, sel := range s.Selectors {
			if e, ok := t.byName[sel]; !ok || e.spec != i {
				return nil, fmt.Errorf("strategy spec %s: selector %q is not one of its options", s.Kind, sel)
			}
		}
	}
	slices.Sort(t.names)
	return t, nil
}

// isSelector reports whether the option selects its spec's kind.
func (t *optionTable) isSelector(e optEntry) bool {
	return e.spec >= 0 && slices.Contains(t.specs[e.spec].Selectors, e.Name)
}

// selectorHint describes how an asset selects spec, for messages:
// "router", "scatter=...".
func (t *optionTable) selectorHint(spec int) string {
	var hints []string
	for _, sel := range t.specs[spec].Selectors {
		if t.byName[sel].Type == strategy.Flag {
			hints = append(hints, sel)
		} else {
			hints = append(hints, sel+"=...")
		}
	}
	if t.specs[spec].SelectedByOutcome {
		hints = append(hints, "a flowstone.Outcome parameter")
	}
	return strings.Join(hints, " or ")
}

// optValue is a validated option.
type optValue struct {
	optEntry
	raw rawOption
	pos token.Pos
	// v holds the parsed value: bool (Flag), string (String, Enum,
	// AssetKey, Ident, Cron), int, float64 (Float, Rate), time.Duration,
	// []string (AssetKeys, Names).
	v any
}

// parseValue checks raw against o's type and returns the parsed value, or
// a description of what is wrong.
func parseValue(o strategy.Option, raw string) (any, string) {
	switch o.Type {
	case strategy.Flag:
		return true, ""
	case strategy.String:
		return raw, ""
	case strategy.Int:
		n, err := strconv.Atoi(raw)
		if err != nil || float64(n) < o.Min || float64(n) > o.Max {
			return nil, fmt.Sprintf("want an integer from %v to %v", o.Min, o.Max)
		}
		return n, ""
	case strategy.Float:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || f < o.Min || f > o.Max {
			return nil, fmt.Sprintf("want a number from %v to %v", o.Min, o.Max)
		}
		return f, ""
	case strategy.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil || d <= 0 {
			return nil, "want a positive Go duration such as 90s, 5m or 1h30m"
		}
		return d, ""
	case strategy.Rate:
		num, unit, ok := strings.Cut(raw, "/")
		f, err := strconv.ParseFloat(num, 64)
		per := map[string]float64{"s": 1, "m": 60, "h": 3600}[unit]
		if !ok || err != nil || per == 0 || !(f > 0) || math.IsInf(f, 0) {
			return nil, "want a rate N/s, N/m or N/h with N > 0"
		}
		return f / per, ""
	case strategy.AssetKey, strategy.Ident:
		if o.Type == strategy.Ident && !token.IsIdentifier(raw) || o.Type == strategy.AssetKey && !validKey(raw) {
			return nil, "want " + typeWord(o.Type)
		}
		return raw, ""
	case strategy.AssetKeys, strategy.Names:
		parts := strings.Split(raw, ",")
		for i, p := range parts {
			switch {
			case o.Type == strategy.AssetKeys && !validKey(p):
				return nil, fmt.Sprintf("%q is not an asset key; want a comma-separated list of asset keys", p)
			case p == "":
				return nil, "empty element; want a comma-separated list"
			case slices.Contains(parts[:i], p):
				return nil, fmt.Sprintf("%s is listed twice", p)
			}
		}
		return parts, ""
	case strategy.Enum:
		if !slices.Contains(o.Enum, raw) {
			return nil, "want one of " + strings.Join(o.Enum, ", ")
		}
		return raw, ""
	case strategy.Cron:
		if problem := checkCron(raw); problem != "" {
			return nil, problem
		}
		return raw, ""
	}
	return nil, fmt.Sprintf("option type %d is not supported by this flowstonegen", o.Type)
}

// typeWord names what an option's value looks like, for messages.
func typeWord(t strategy.OptionType) string {
	switch t {
	case strategy.Int:
		return "N"
	case strategy.Float:
		return "F"
	case strategy.Duration:
		return "D"
	case strategy.Rate:
		return "N/s"
	case strategy.AssetKey:
		return "an asset key"
	case strategy.AssetKeys:
		return "a,b"
	case strategy.Ident:
		return "a Go identifier"
	case strategy.Names:
		return "a,b"
	case strategy.Cron:
		return `"CRON"`
	}
	return "value"
}

// checkCron validates a schedule expression with the runtime's own
// parser; it returns "" when s is valid.
func checkCron(s string) string {
	if _, err := cronexpr.Parse(s); err != nil {
		return "want a cron expression (minute hour day-of-month month day-of-week 0-6, or @daily, @every 1h): " + err.Error()
	}
	return ""
}

// grammar is the option table of a directive other than //flowstone:asset
// (sensor, check): one fixed list of options, the same checks.
type grammar struct {
	table   []strategy.Option
	subject string
	// example is the value shown for an option written without one.
	example func(strategy.Option) string
	// flagValue reports a flag written with a value.
	flagValue func(pos token.Pos, name string)
}

// parse checks d's options against g: unknown names (with the nearest
// one), duplicates, flags given values, missing and bad values. It calls
// apply with each valid option but name=, which callers read first (their
// messages name the directive by it), and returns the names seen.
func (g grammar) parse(d *directive, errs *errorList, apply func(o rawOption, pos token.Pos, v any)) map[string]bool {
	names := make([]string, len(g.table))
	for i, o := range g.table {
		names[i] = o.Name
	}
	seen := map[string]bool{}
	for _, o := range d.opts {
		pos := d.pos + token.Pos(o.off)
		i := slices.IndexFunc(g.table, func(opt strategy.Option) bool { return opt.Name == o.name })
		switch {
		case i < 0:
			hint := didYouMean(o.name, names)
			if hint == "" {
				hint = " (known: " + strings.Join(names, ", ") + ")"
			}
			errs.at(pos, msgUnknownOption, g.subject, o.name, hint)
			continue
		case seen[o.name]:
			errs.at(pos, msgDuplicateOption, g.subject, o.name)
			continue
		case g.table[i].Type == strategy.Flag && o.hasValue:
			g.flagValue(pos, o.name)
			continue
		}
		opt := g.table[i]
		seen[o.name] = true
		if opt.Type == strategy.Flag {
			apply(o, pos, true)
			continue
		}
		if !o.hasValue {
			errs.at(pos, msgMissingValue, g.subject, o.name, o.name, g.example(opt))
			continue
		}
		if o.name == "name" {
			continue
		}
		v, problem := parseValue(opt, o.value)
		if problem != "" {
			shown := o.value
			if strings.ContainsAny(shown, " \t\"") {
				shown = strconv.Quote(shown)
			}
			errs.at(pos, msgBadValue, g.subject, o.name, shown, problem)
			continue
		}
		apply(o, pos, v)
	}
	return seen
}
