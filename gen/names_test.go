package gen

import (
	"go/token"
	"go/types"
	"testing"

	"github.com/flowstone-go/flowstone/strategy"
)

func TestSnakeCase(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"DailyRevenue": "daily_revenue",
		"HTTPLogs":     "http_logs",
		"cleanOrders":  "clean_orders",
		"GetURLForID":  "get_url_for_id",
		"V2Orders":     "v2_orders",
		"orders2":      "orders2",
		"clean_orders": "clean_orders",
		"A":            "a",
		"TopStoryIDs":  "top_story_ids",
		"topStoryIDs":  "top_story_ids",
		"StoryURLs":    "story_urls",
		"storyURLs":    "story_urls",
		"IDsByURL":     "ids_by_url",
		"HTTPServer":   "http_server",
		"IDs":          "ids",
		"AStory":       "a_story",
		"URLsOf":       "urls_of",
	} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNearest(t *testing.T) {
	t.Parallel()
	names := []string{"partitions", "priority", "retries", "router"}
	for in, want := range map[string]string{
		"partitons": "partitions",
		"retires":   "retries",
		"routr":     "router",
		"zzz":       "",
		"timeouts":  "",
	} {
		if got := nearest(in, names); got != want {
			t.Errorf("nearest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseValue(t *testing.T) {
	t.Parallel()
	intOpt := strategy.Option{Type: strategy.Int, Min: 1, Max: 4}
	for _, c := range []struct {
		opt  strategy.Option
		raw  string
		want any // nil: an error
	}{
		{intOpt, "2", 2},
		{intOpt, "5", nil},
		{intOpt, "1.5", nil},
		{strategy.Option{Type: strategy.Rate}, "30/m", 0.5},
		{strategy.Option{Type: strategy.Rate}, "2/s", 2.0},
		{strategy.Option{Type: strategy.Rate}, "0/s", nil},
		{strategy.Option{Type: strategy.Rate}, "NaN/s", nil},
		{strategy.Option{Type: strategy.Float, Max: 1}, "NaN", nil},
		{strategy.Option{Type: strategy.Cron}, "*/15 9-17 * JAN-MAR mon-fri", "*/15 9-17 * JAN-MAR mon-fri"},
		{strategy.Option{Type: strategy.Cron}, "@every 90s", "@every 90s"},
		{strategy.Option{Type: strategy.Cron}, "* * * *", nil},
		{strategy.Option{Type: strategy.Cron}, "5-1 * * * *", nil},
		{strategy.Option{Type: strategy.Cron}, "*/0 * * * *", nil},
		{strategy.Option{Type: strategy.Ident}, "Days", "Days"},
		{strategy.Option{Type: strategy.Ident}, "1Days", nil},
	} {
		got, problem := parseValue(c.opt, c.raw)
		if c.want == nil {
			if problem == "" {
				t.Errorf("parseValue(%v, %q) = %v, want an error", c.opt.Type, c.raw, got)
			}
			continue
		}
		if problem != "" || got != c.want {
			t.Errorf("parseValue(%v, %q) = %v, %q; want %v", c.opt.Type, c.raw, got, problem, c.want)
		}
	}
}

// TestTypeProblem covers what golden cases cannot reach: a type from
// another package whose name is unexported (seen only when aliases are not
// materialized).
func TestTypeProblem(t *testing.T) {
	t.Parallel()
	local := types.NewPackage("example.com/local", "local")
	other := types.NewPackage("example.com/other", "other")
	hidden := types.NewNamed(types.NewTypeName(token.NoPos, other, "hidden", nil), types.Typ[types.Int], nil)
	shown := types.NewNamed(types.NewTypeName(token.NoPos, other, "Shown", nil), types.Typ[types.Int], nil)
	if _, bad := typeProblem(types.NewSlice(hidden), local); bad != hidden {
		t.Errorf("[]other.hidden: got %v, want other.hidden reported", bad)
	}
	if invalid, bad := typeProblem(types.NewMap(types.Typ[types.String], shown), local); invalid || bad != nil {
		t.Errorf("map[string]other.Shown: got %v, %v; want no problem", invalid, bad)
	}
	if invalid, _ := typeProblem(types.NewPointer(types.Typ[types.Invalid]), local); !invalid {
		t.Error("*invalid: not reported")
	}
}
