package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/strategy"
	"github.com/google/go-cmp/cmp"
)

// selectionPipeline: raw_orders -> clean_orders -> daily_revenue -> report,
// clean_orders -> approval (a gate), and customers on its own.
func selectionPipeline() *Pipeline {
	noop := func(context.Context, *Inputs) (any, error) { return nil, nil }
	a := func(key, group string, tags []string, deps ...Dep) AssetDef {
		d := def(key, noop, deps...)
		d.Group, d.Tags = group, tags
		return d
	}
	gate := a("approval", "finance", []string{"team=ops"}, on("clean_orders"))
	gate.Kind, gate.Strategy = "gate", strategy.Gate{}
	return NewPipeline(PipelineDef{Name: "shop", Assets: []AssetDef{
		a("raw_orders", "ingest", []string{"shop", "raw"}),
		a("customers", "ingest", []string{"crm", "pii"}),
		a("clean_orders", "ingest", []string{"shop"}, on("raw_orders")),
		a("daily_revenue", "finance", []string{"team=finance"}, on("clean_orders")),
		gate,
		a("report", "finance", []string{"team=finance", "pii"}, Dep{Asset: "daily_revenue", Kind: DepOrder}),
	}})
}

func TestSelect(t *testing.T) {
	t.Parallel()
	p := selectionPipeline()
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"daily_revenue", []string{"daily_revenue"}},
		{"+daily_revenue", []string{"raw_orders", "clean_orders", "daily_revenue"}},
		{"+1daily_revenue", []string{"clean_orders", "daily_revenue"}},
		{"clean_orders+", []string{"clean_orders", "daily_revenue", "approval", "report"}},
		{"clean_orders+1", []string{"clean_orders", "daily_revenue", "approval"}},
		{"+clean_orders+1", []string{"raw_orders", "clean_orders", "daily_revenue", "approval"}},
		{"*", []string{"raw_orders", "customers", "clean_orders", "daily_revenue", "approval", "report"}},
		{"group:finance", []string{"daily_revenue", "approval", "report"}},
		{"tag:pii", []string{"customers", "report"}},
		{"tag:team", []string{"daily_revenue", "approval", "report"}},
		{"tag:team=finance", []string{"daily_revenue", "report"}},
		{"kind:gate", []string{"approval"}},
		{"report, customers", []string{"customers", "report"}},
		{"report customers", []string{"customers", "report"}},
		{"group:finance and tag:pii", []string{"report"}},
		{"tag:pii and group:ingest, kind:gate", []string{"customers", "approval"}},
		{"+report and group:ingest", []string{"raw_orders", "clean_orders"}},
		{"+group:finance and tag:shop", []string{"raw_orders", "clean_orders"}},
	} {
		got, err := p.Select(tc.sel)
		if err != nil {
			t.Errorf("Select(%q): %v", tc.sel, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Select(%q) (-want +got):\n%s", tc.sel, diff)
		}
	}
}

func TestSelectErrors(t *testing.T) {
	t.Parallel()
	p := selectionPipeline()
	for _, tc := range []struct {
		sel  string
		is   error
		want string
	}{
		{"daily_revenu", ErrUnknownAsset, `unknown asset: "daily_revenu" in pipeline shop (did you mean daily_revenue?)`},
		{"+dialy_revenue", ErrUnknownAsset, `(did you mean daily_revenue?)`},
		{"zzz", ErrUnknownAsset, `"zzz" in pipeline shop (assets: raw_orders, customers, clean_orders, daily_revenue, approval, report)`},
		{"group:financ", ErrBadSelection, `"group:financ": no asset of pipeline shop has group "financ" (did you mean finance?) (groups: finance, ingest)`},
		{"tag:secret", ErrBadSelection, `no asset of pipeline shop has tag "secret" (tags: crm, pii, raw, shop, team=finance, team=ops)`},
		{"kind:scatter", ErrBadSelection, `has kind "scatter" (kinds: gate, standard)`},
		{"kind:gate and group:ingest", ErrBadSelection, `"kind:gate and group:ingest" matches no asset of pipeline shop`},
		{"report and", ErrBadSelection, `"and": needs an asset on its right`},
		{"grop:finance", ErrBadSelection, `unknown prefix "grop:"`},
	} {
		_, err := p.Select(tc.sel)
		if !errors.Is(err, tc.is) || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Select(%q) = %v, want %v containing %q", tc.sel, err, tc.is, tc.want)
		}
	}
}
