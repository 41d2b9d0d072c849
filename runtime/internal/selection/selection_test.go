package selection

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	t.Parallel()
	name := func(v string, up, down int, text string) Atom {
		return Atom{Form: Name, Value: v, Up: up, Down: down, Text: text}
	}
	for _, tc := range []struct {
		in   string
		want Expr
	}{
		{"daily_revenue", Expr{{name("daily_revenue", 0, 0, "daily_revenue")}}},
		{"+daily_revenue", Expr{{name("daily_revenue", Unbounded, 0, "+daily_revenue")}}},
		{"raw_orders+", Expr{{name("raw_orders", 0, Unbounded, "raw_orders+")}}},
		{"+2daily_revenue", Expr{{name("daily_revenue", 2, 0, "+2daily_revenue")}}},
		{"raw_orders+1", Expr{{name("raw_orders", 0, 1, "raw_orders+1")}}},
		{"+top10+", Expr{{name("top10", Unbounded, Unbounded, "+top10+")}}},
		{"*", Expr{{{Form: All, Text: "*"}}}},
		{"group:finance", Expr{{{Form: Group, Value: "finance", Text: "group:finance"}}}},
		{"+group:finance", Expr{{{Form: Group, Value: "finance", Up: Unbounded, Text: "+group:finance"}}}},
		{"tag:team=data", Expr{{{Form: Tag, Value: "team=data", Text: "tag:team=data"}}}},
		{"tag:pii", Expr{{{Form: Tag, Value: "pii", Text: "tag:pii"}}}},
		{"kind:gate", Expr{{{Form: Kind, Value: "gate", Text: "kind:gate"}}}},
		{"a,b", Expr{{name("a", 0, 0, "a")}, {name("b", 0, 0, "b")}}},
		{" a ,  b c ", Expr{{name("a", 0, 0, "a")}, {name("b", 0, 0, "b")}, {name("c", 0, 0, "c")}}},
		{"group:g and tag:t, c", Expr{
			{{Form: Group, Value: "g", Text: "group:g"}, {Form: Tag, Value: "t", Text: "tag:t"}},
			{name("c", 0, 0, "c")},
		}},
		{"a b and c", Expr{{name("a", 0, 0, "a")}, {name("b", 0, 0, "b"), name("c", 0, 0, "c")}}},
	} {
		got, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"", `selection "": empty selection`},
		{"  ", `empty selection`},
		{"+", `"+": a + mark needs an asset, e.g. +name or name+`},
		{"a,,b", `a comma with nothing before it`},
		{",a", `a comma with nothing before it`},
		{"a,", `ends with a comma`},
		{"and a", `"and": needs an asset on its left`},
		{"a and", `"and": needs an asset on its right`},
		{"a and, b", `"and": needs an asset on its right`},
		{"a and and b", `"and": needs an asset on its left`},
		{"na+me", `"na+me": a + mark goes before or after a name`},
		{"name++", `"name++": a + mark goes before or after a name`},
		{"+0name", `"+0name": depth "0": want a positive number of levels`},
		{"grup:finance", `"grup:finance": unknown prefix "grup:": want group:, tag: or kind:`},
		{"group:", `"group:": group: needs a value, e.g. group:finance`},
		{"group:a=b", `"group:a=b": bad group value "a=b", e.g. group:finance`},
		{"tag:=v", `bad tag value "=v"`},
		{"team=data", `"team=data": k=v selects tags: write tag:team=data`},
		{"a*", `"a*": * stands alone: it selects every asset`},
	} {
		_, err := Parse(tc.in)
		if err == nil {
			t.Errorf("Parse(%q) = nil error, want %q", tc.in, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %q, want it to contain %q", tc.in, err, tc.want)
		}
	}
}
