package gen

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"github.com/dave/jennifer/jen"
	"github.com/flowstone-go/flowstone/strategy"
)

// The //flowstone:check directive: an asset check's options, the
// function's shape and the asset it checks. The emitter writes its
// CheckDef and its wrapper.

// check is one //flowstone:check function.
type assetCheck struct {
	fn  *ast.FuncDecl
	sig *types.Signature
	dir *directive

	name     string // unique per asset
	desc     string
	assetKey string
	assetAt  token.Pos
	on       *asset // set by the analysis
	blocking bool
	severity string // "" (the runtime's default, error), "warn" or "error"
	broken   bool

	valueName string   // the wrapper's name for the checked value
	params    []*param // the resources, after ctx and the value
	resources []string
}

// subject names the check in messages.
func (c *assetCheck) subject() string { return "check " + c.name }

// checkOptions is the grammar of //flowstone:check, sorted by name.
func checkOptions() []strategy.Option {
	return []strategy.Option{
		{Name: "asset", Type: strategy.AssetKey},
		{Name: "blocking", Type: strategy.Flag},
		{Name: "name", Type: strategy.AssetKey},
		{Name: "severity", Type: strategy.Enum, Enum: []string{"error", "warn"}},
	}
}

// parseCheck checks a check directive's options and that the function is
// a plain top-level function; the analysis checks the rest.
func (p *pipelineDecl) parseCheck(fd *ast.FuncDecl, d *directive, errs *errorList) *assetCheck {
	c := &assetCheck{fn: fd, dir: d, name: snakeCase(fd.Name.Name), desc: strings.TrimSpace(fd.Doc.Text())}
	for _, o := range d.opts {
		if o.name == "name" && o.hasValue {
			if !validKey(o.value) {
				errs.at(d.pos+token.Pos(o.off), msgCheckName, c.name, o.value)
			} else {
				c.name = o.value
			}
			break
		}
	}
	seen := grammar{
		table:   checkOptions(),
		subject: c.subject(),
		example: func(o strategy.Option) string {
			return map[string]string{"asset": "asset_key", "name": "check_name", "severity": "warn"}[o.Name]
		},
		flagValue: func(pos token.Pos, name string) { errs.at(pos, msgCheckFlagValue, c.name, name, name) },
	}.parse(d, errs, func(o rawOption, pos token.Pos, v any) {
		switch o.name {
		case "blocking":
			c.blocking = true
		case "asset":
			c.assetKey, c.assetAt = v.(string), pos+token.Pos(len("asset="))
		case "severity":
			c.severity = v.(string)
		}
	})
	if !seen["asset"] {
		errs.at(d.pos, msgCheckAsset, c.name)
	}
	if fd.Recv != nil {
		recv := "?"
		if len(fd.Recv.List) == 1 {
			recv = types.ExprString(fd.Recv.List[0].Type)
		}
		errs.at(fd.Name.Pos(), msgMethod, c.subject(), "("+recv+")."+fd.Name.Name, "a check")
		return nil
	}
	if fd.Type.TypeParams != nil {
		errs.at(fd.Name.Pos(), msgGeneric, c.subject(), fd.Name.Name, "a check")
		return nil
	}
	obj, ok := p.pkg.Types.Scope().Lookup(fd.Name.Name).(*types.Func)
	if !ok || obj.Pos() != fd.Name.Pos() || c.assetKey == "" {
		return nil
	}
	c.sig = obj.Type().(*types.Signature)
	return c
}

// checks resolves each check's asset and checks names and signatures.
func (an *analyser) checks() {
	type id struct{ asset, name string }
	seen := map[id]*assetCheck{}
	kept := an.p.checks[:0]
	for _, c := range an.p.checks {
		c.on = an.p.byKey[c.assetKey]
		if c.on == nil {
			an.errs.at(c.assetAt, msgUnknownDep, c.subject(), "asset", c.assetKey, c.assetKey, didYouMean(c.assetKey, an.assetKeys()))
			continue
		}
		if prev := seen[id{c.assetKey, c.name}]; prev != nil {
			an.errs.at(c.fn.Name.Pos(), msgDuplicateCheck, c.name, c.assetKey, prev.fn.Name.Name, an.shortPos(prev.fn.Name.Pos()))
			continue
		}
		seen[id{c.assetKey, c.name}] = c
		an.checkSignature(c)
		if !c.broken {
			kept = append(kept, c)
		}
	}
	an.p.checks = kept
}

// checkSignature checks func(ctx context.Context, v T, resources...)
// (flowstone.CheckResult, error), T being the checked asset's value type.
func (an *analyser) checkSignature(c *assetCheck) {
	var slots []*param
	for _, field := range c.fn.Type.Params.List {
		if len(field.Names) == 0 {
			slots = append(slots, &param{pos: field.Type.Pos()})
		}
		for _, id := range field.Names {
			slots = append(slots, &param{name: id.Name, pos: id.Pos()})
		}
	}
	params := c.sig.Params()
	if params.Len() == 0 || !isNamed(params.At(0).Type(), "context", "Context") {
		an.errs.at(c.fn.Type.Params.Pos(), msgFirstParam, c.subject())
		c.broken = true
		return
	}
	want := c.on.value
	switch {
	case want == nil:
		an.errs.at(c.fn.Name.Pos(), msgCheckNoValue, c.name, c.on.key)
		c.broken = true
		return
	case params.Len() < 2 || !types.Identical(params.At(1).Type(), want):
		found, at := "no second parameter", c.fn.Type.Params.Closing
		if params.Len() >= 2 {
			found, at = an.typeString(params.At(1).Type()), slots[1].pos
		}
		an.errs.at(at, msgCheckValue, c.name, c.on.key, an.typeString(want), found)
		c.broken = true
	}
	res := c.sig.Results()
	if res.Len() != 2 || !isNamed(res.At(0).Type(), flowstonePath, "CheckResult") ||
		!types.Identical(res.At(1).Type(), types.Universe.Lookup("error").Type()) {
		at := c.fn.Type.Pos()
		if c.fn.Type.Results != nil {
			at = c.fn.Type.Results.Pos()
		}
		an.errs.at(at, msgCheckReturns, c.name, an.typeString(res))
		c.broken = true
	}
	for i := 2; i < params.Len() && i < len(slots); i++ {
		pm := slots[i]
		pm.typ = params.At(i).Type()
		if pm.name == "" || pm.name == "_" {
			an.errs.at(pm.pos, msgUnnamedParam, c.subject(), i+1, an.typeString(pm.typ))
			c.broken = true
			continue
		}
		t := pm.typ
		if isNamed(t, flowstonePath, "Partition") || an.p.config != nil && types.Identical(t, an.p.config.Type()) ||
			outcomeOf(t) != nil || previousOf(t) != nil || partitionMapOf(t) != nil || an.p.byKey[snakeCase(pm.name)] != nil {
			an.errs.at(pm.pos, msgCheckParam, c.name, pm.name, an.typeString(t))
			c.broken = true
			continue
		}
		pm.role, pm.field = roleResource, upperFirst(pm.name)
		c.params = append(c.params, pm)
		c.resources = append(c.resources, pm.name)
	}
	c.valueName = "value"
	for _, pm := range c.params {
		if pm.name == c.valueName {
			c.valueName = "checked"
		}
	}
}

func checkWrapperName(c *assetCheck) string {
	return "runCheck" + camelCase(c.on.key) + camelCase(c.name)
}

// checkDef lists the fields of one runtime.CheckDef; zero values are left
// out.
func (e *emitter) checkDef(c *assetCheck) []jen.Code {
	out := []jen.Code{field("Name", jen.Lit(c.name)), field("Asset", jen.Id("Asset"+c.on.ident))}
	if c.desc != "" {
		out = append(out, field("Description", jen.Lit(c.desc)))
	}
	if c.blocking {
		out = append(out, field("Blocking", jen.True()))
	}
	switch c.severity {
	case "warn":
		out = append(out, field("Severity", e.qual(flowstonePath, "flowstone", "SeverityWarn")))
	case "error":
		out = append(out, field("Severity", e.qual(flowstonePath, "flowstone", "SeverityError")))
	}
	if len(c.resources) > 0 {
		out = append(out, field("Resources", jen.Index().String().Values(lits(c.resources)...)))
	}
	return append(out, field("Run", jen.Id(checkWrapperName(c))))
}

// checkDefs is the Checks field of the PipelineDef; nil without checks.
func (e *emitter) checkDefs() []jen.Code {
	if len(e.p.checks) == 0 {
		return nil
	}
	checks := make([]jen.Code, len(e.p.checks))
	for i, c := range e.p.checks {
		checks[i] = jen.Custom(multiline(), e.checkDef(c)...)
	}
	return []jen.Code{field("Checks", jen.Index().Add(e.rt("CheckDef")).Custom(multiline(), checks...))}
}

// checkWrappers declares one typed wrapper per check: it loads the
// checked materialization's value and passes it, with the resources, to
// the function.
func (e *emitter) checkWrappers() part {
	var out part
	for _, c := range e.p.checks {
		// The wrapper's names must not hide the function it calls.
		ctx, in, res, v := "ctx", "in", "res", c.valueName
		for _, n := range []*string{&ctx, &in, &res, &v} {
			if *n == c.fn.Name.Name {
				*n += "Arg"
			}
		}
		result := e.qual(flowstonePath, "flowstone", "CheckResult")
		body := []jen.Code{
			jen.List(jen.Id(v), jen.Err()).Op(":=").Add(e.rt("Input")).Types(e.typ(c.on.value)).
				Call(jen.Id(ctx), jen.Id(in), jen.Id("Asset"+c.on.ident)),
			jen.If(jen.Err().Op("!=").Nil()).Block(jen.Return(result.Clone().Values(), jen.Err())),
		}
		args := []jen.Code{jen.Id(ctx), jen.Id(v)}
		if len(c.params) > 0 {
			body = append(body, jen.Id(res).Op(":=").Add(e.rt("ResourcesValue")).Types(jen.Id("Resources")).Call(jen.Id(in)))
			for _, pm := range c.params {
				args = append(args, jen.Id(res).Dot(pm.field))
			}
		}
		body = append(body, jen.Return(jen.Id(c.fn.Name.Name).Call(args...)))
		out = append(out,
			jen.Commentf("%s calls %s with the %s value it checks.", checkWrapperName(c), c.fn.Name.Name, c.on.key),
			jen.Func().Id(checkWrapperName(c)).Params(
				jen.Id(ctx).Add(e.ctxType()), jen.Id(in).Op("*").Add(e.rt("Inputs")),
			).Params(result, jen.Error()).Block(body...),
		)
	}
	return out
}
