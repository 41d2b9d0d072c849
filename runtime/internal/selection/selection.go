// Package selection parses asset selections, the one grammar the API
// (Request.Select) and the command line share:
//
//	name          the asset
//	+name         it and everything upstream; +2name: two levels up
//	name+         it and everything downstream; name+1: one level down
//	*             every asset
//	group:g       the assets of group g
//	tag:k=v       the assets tagged k=v; tag:k: tagged k or k=anything
//	kind:k        the assets of kind k (gate, router, scatter, ...)
//	a, b  or  a b the union
//	a and b       the intersection (binds tighter than the union)
//
// The + depth marks apply to every form: +group:finance is the group and
// its upstream. Parse checks the syntax; resolving names against a
// pipeline is the runtime's.
package selection

import (
	"fmt"
	"strconv"
	"strings"
)

// Form is what an atom matches.
type Form int

const (
	// Name is one asset by key.
	Name Form = iota
	// All is every asset (*).
	All
	// Group is the assets of a group (group:g).
	Group
	// Tag is the assets carrying a tag (tag:k or tag:k=v).
	Tag
	// Kind is the assets of a kind (kind:k).
	Kind
)

// String returns the form's prefix without the colon (group, tag,
// kind), or "name" and "*".
func (f Form) String() string {
	switch f {
	case All:
		return "*"
	case Group:
		return "group"
	case Tag:
		return "tag"
	case Kind:
		return "kind"
	}
	return "name"
}

// Unbounded is the depth of a bare + mark: every level.
const Unbounded = -1

// Atom is one term of a selection, with its depth marks.
type Atom struct {
	Form Form
	// Value is the asset key, group, tag or kind. For a tag it is the
	// whole tag as written after "tag:", k or k=v.
	Value string
	// Up and Down are how many levels of upstream and downstream assets
	// the atom adds: 0 none, Unbounded all.
	Up, Down int
	// Text is the atom as written, for error messages.
	Text string
}

// Expr is a parsed selection: a union of intersections of atoms.
type Expr [][]Atom

// Error is a syntax error; Part is the offending part as written.
type Error struct {
	Selection string
	Part      string
	Msg       string
}

func (e *Error) Error() string {
	if e.Part == "" {
		return fmt.Sprintf("selection %q: %s", e.Selection, e.Msg)
	}
	return fmt.Sprintf("selection %q: %q: %s", e.Selection, e.Part, e.Msg)
}

// prefixes are the atom forms written prefix:value.
var prefixes = map[string]Form{"group": Group, "tag": Tag, "kind": Kind}

// Parse parses a selection. An empty or blank selection is an error: the
// caller decides what "nothing given" means.
func Parse(s string) (Expr, error) {
	bad := func(part, format string, args ...any) error {
		return &Error{Selection: s, Part: part, Msg: fmt.Sprintf(format, args...)}
	}
	// Commas separate like blanks, but two in a row or one next to "and"
	// leave a term empty, which is an error.
	toks := strings.Fields(strings.ReplaceAll(s, ",", " , "))
	if len(toks) == 0 {
		return nil, bad("", "empty selection")
	}
	var expr Expr
	var conj []Atom
	pendingAnd := false
	for _, tok := range toks {
		switch tok {
		case ",":
			if pendingAnd {
				return nil, bad("and", "needs an asset on its right")
			}
			if len(conj) == 0 {
				return nil, bad("", "a comma with nothing before it")
			}
			expr, conj = append(expr, conj), nil
		case "and":
			if len(conj) == 0 || pendingAnd {
				return nil, bad("and", "needs an asset on its left")
			}
			pendingAnd = true
		default:
			a, err := parseAtom(tok)
			if err != nil {
				return nil, bad(tok, "%v", err)
			}
			if !pendingAnd && len(conj) > 0 {
				expr, conj = append(expr, conj), nil // blank-separated: a union
			}
			conj, pendingAnd = append(conj, a), false
		}
	}
	switch {
	case pendingAnd:
		return nil, bad("and", "needs an asset on its right")
	case len(conj) == 0:
		return nil, bad("", "ends with a comma")
	}
	return append(expr, conj), nil
}

// parseAtom parses one term with its + marks.
func parseAtom(tok string) (Atom, error) {
	a := Atom{Text: tok}
	rest := tok
	if r, ok := strings.CutPrefix(rest, "+"); ok {
		n, r, err := depth(r)
		if err != nil {
			return a, err
		}
		a.Up, rest = n, r
	}
	if i := strings.LastIndexByte(rest, '+'); i >= 0 {
		n, tail, err := depth(rest[i+1:])
		if err != nil || tail != "" {
			return a, fmt.Errorf("a + mark goes before or after a name, with an optional depth (+2name, name+1)")
		}
		a.Down, rest = n, rest[:i]
	}
	switch {
	case rest == "":
		return a, fmt.Errorf("a + mark needs an asset, e.g. +name or name+")
	case rest == "*":
		a.Form = All
		return a, nil
	case strings.Contains(rest, "*"):
		return a, fmt.Errorf("* stands alone: it selects every asset")
	case strings.Contains(rest, "+"):
		return a, fmt.Errorf("a + mark goes before or after a name, with an optional depth (+2name, name+1)")
	}
	if p, v, ok := strings.Cut(rest, ":"); ok {
		form, known := prefixes[p]
		if !known {
			return a, fmt.Errorf("unknown prefix %q: want group:, tag: or kind:", p+":")
		}
		if v == "" {
			return a, fmt.Errorf("%s: needs a value, e.g. %s", p, examples[form])
		}
		if form != Tag && strings.Contains(v, "=") || strings.Count(v, "=") > 1 || strings.HasPrefix(v, "=") {
			return a, fmt.Errorf("bad %s value %q, e.g. %s", p, v, examples[form])
		}
		a.Form, a.Value = form, v
		return a, nil
	}
	if strings.Contains(rest, "=") {
		return a, fmt.Errorf("k=v selects tags: write tag:%s", rest)
	}
	a.Form, a.Value = Name, rest
	return a, nil
}

var examples = map[Form]string{Group: "group:finance", Tag: "tag:pii or tag:team=data", Kind: "kind:gate"}

// depth reads the optional level count after a + mark and returns what
// follows it.
func depth(s string) (int, string, error) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return Unbounded, s, nil
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n == 0 {
		return 0, s, fmt.Errorf("depth %q: want a positive number of levels", s[:i])
	}
	return n, s[i:], nil
}
