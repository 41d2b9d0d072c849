package suggest

import "testing"

func TestNearest(t *testing.T) {
	t.Parallel()
	keys := []string{"raw_orders", "clean_orders", "daily_revenue", "publish_report"}
	for _, tc := range []struct{ word, want string }{
		{"daily_revenu", "daily_revenue"},
		{"daly_revenue", "daily_revenue"},
		{"raw_order", "raw_orders"},
		{"clean_ordres", "clean_orders"},
		{"revenue", ""},
		{"xyz", ""},
		{"daily_revenue", ""}, // an exact match is not a suggestion
	} {
		if got := Nearest(tc.word, keys); got != tc.want {
			t.Errorf("Nearest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if got := Nearest("mat", []string{"map", "cat"}); got != "map" {
		t.Errorf("a tie goes to the earlier candidate: got %q", got)
	}
	if got := DidYouMean("staus", []string{"status"}); got != " (did you mean status?)" {
		t.Errorf("DidYouMean = %q", got)
	}
}
