package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/flowstone-go/flowstone/internal/suggest"
	"github.com/flowstone-go/flowstone/runtime/internal/selection"
)

// ErrBadSelection: a selection that does not parse, or names a group, tag
// or kind no asset has, or matches no asset.
var ErrBadSelection = errors.New("bad selection")

// Select returns the keys of the assets a selection names, in topological
// order. The grammar (Request.Select and the command line's arguments):
//
//	name            the asset
//	+name  +2name   with everything upstream, or two levels of it
//	name+  name+1   with everything downstream, or one level of it
//	*               every asset
//	group:g         the assets of group g (group= on the directive)
//	tag:k=v  tag:k  the assets tagged k=v; tag:k matches k and k=anything
//	kind:k          the assets of a kind: standard, router, gate, ...
//	a, b   a b      union
//	a and b         intersection, binding tighter than union
//
// An unknown asset is an ErrUnknownAsset error that suggests the nearest
// key; a group, tag or kind no asset has, or a selection matching nothing,
// is an ErrBadSelection error.
func (p *Pipeline) Select(expr string) ([]string, error) {
	ex, err := selection.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadSelection, err)
	}
	picked := map[string]bool{}
	for _, conj := range ex {
		var set map[string]bool
		for _, atom := range conj {
			m, err := p.matchAtom(atom)
			if err != nil {
				return nil, err
			}
			if set == nil {
				set = m
				continue
			}
			for k := range set {
				if !m[k] {
					delete(set, k)
				}
			}
		}
		for k := range set {
			picked[k] = true
		}
	}
	var out []string
	for _, a := range p.assets {
		if picked[a.Key] {
			out = append(out, a.Key)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q matches no asset of pipeline %s", ErrBadSelection, expr, p.name)
	}
	return out, nil
}

// matchAtom returns the keys one atom selects, its + marks applied.
func (p *Pipeline) matchAtom(at selection.Atom) (map[string]bool, error) {
	m := map[string]bool{}
	var what []string // the values that exist, for the error
	for _, a := range p.assets {
		switch at.Form {
		case selection.All:
			m[a.Key] = true
		case selection.Name:
			m[a.Key] = a.Key == at.Value
		case selection.Group:
			m[a.Key] = a.Group == at.Value
			what = appendNew(what, a.Group)
		case selection.Tag:
			m[a.Key] = slices.ContainsFunc(a.Tags, func(t string) bool { return tagMatches(t, at.Value) })
			for _, t := range a.Tags {
				what = appendNew(what, t)
			}
		case selection.Kind:
			m[a.Key] = a.Kind == at.Value
			what = appendNew(what, a.Kind)
		}
		if !m[a.Key] {
			delete(m, a.Key)
		}
	}
	if len(m) == 0 {
		if at.Form == selection.Name {
			return nil, p.unknownAsset(at.Value)
		}
		form := at.Form.String()
		sort.Strings(what)
		have := "no asset has one"
		if len(what) > 0 {
			have = form + "s: " + strings.Join(what, ", ")
		}
		return nil, fmt.Errorf("%w: %q: no asset of pipeline %s has %s %q%s (%s)",
			ErrBadSelection, at.Text, p.name, form, at.Value, suggest.DidYouMean(at.Value, what), have)
	}
	p.walk(m, at.Up, func(k string) []string {
		var ups []string
		for _, d := range p.byKey[k].Deps {
			if d.Kind != DepPrevious {
				ups = append(ups, d.Asset)
			}
		}
		return ups
	})
	p.walk(m, at.Down, func(k string) []string { return p.downstream[k] })
	return m, nil
}

// walk adds to set the assets next reaches from it within depth levels
// (selection.Unbounded: all of them).
func (p *Pipeline) walk(set map[string]bool, depth int, next func(string) []string) {
	frontier := make([]string, 0, len(set))
	for k := range set {
		frontier = append(frontier, k)
	}
	for level := 0; len(frontier) > 0 && (depth == selection.Unbounded || level < depth); level++ {
		var more []string
		for _, k := range frontier {
			for _, n := range next(k) {
				if !set[n] {
					set[n] = true
					more = append(more, n)
				}
			}
		}
		frontier = more
	}
}

// tagMatches reports whether tag (as written in tags=) matches the
// selection's tag:want: k=v matches exactly, a bare k matches k and k=v.
func tagMatches(tag, want string) bool {
	if tag == want {
		return true
	}
	k, _, ok := strings.Cut(tag, "=")
	return ok && !strings.Contains(want, "=") && k == want
}

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Lookup returns the asset named key, or an error matching ErrUnknownAsset
// that suggests the nearest key.
func (p *Pipeline) Lookup(key string) (*AssetDef, error) {
	if a := p.byKey[key]; a != nil {
		return a, nil
	}
	return nil, p.unknownAsset(key)
}

// unknownAsset is the error for a key the pipeline does not have: it
// suggests the nearest key, or lists them all when none is near.
func (p *Pipeline) unknownAsset(key string) error {
	if near := suggest.Nearest(key, p.keys()); near != "" {
		return fmt.Errorf("%w: %q in pipeline %s (did you mean %s?)", ErrUnknownAsset, key, p.name, near)
	}
	return fmt.Errorf("%w: %q in pipeline %s (assets: %s)", ErrUnknownAsset, key, p.name, strings.Join(p.keys(), ", "))
}

// targets resolves a request's Targets and Select into asset keys: their
// union, nil when both are empty (every asset).
func (p *Pipeline) targets(names []string, sel string) ([]string, error) {
	for _, t := range names {
		if p.byKey[t] == nil {
			return nil, p.unknownAsset(t)
		}
	}
	if strings.TrimSpace(sel) == "" {
		return names, nil
	}
	keys, err := p.Select(sel)
	if err != nil {
		return nil, err
	}
	for _, t := range names {
		keys = appendNew(keys, t)
	}
	return keys, nil
}
