package gen

import (
	"container/heap"
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/types/typeutil"

	"github.com/flowstone-go/flowstone/strategy"
)

// analyser resolves one package's assets against each other: keys, kinds,
// parameters, references, resources and the graph.
type analyser struct {
	p     *pipelineDecl
	table *optionTable
	errs  *errorList
	local *types.Package
	qual  types.Qualifier
	// producers maps a value type to the keys of the assets producing it,
	// for misspelling hints without comparing every pair.
	producers typeutil.Map
	keyList   []string
}

// analyse runs every check on p, recording all errors in errs.
func analyse(p *pipelineDecl, table *optionTable, errs *errorList) {
	an := &analyser{p: p, table: table, errs: errs, local: p.pkg.Types, qual: qualifier(p.pkg.Types)}
	an.keys()
	for _, a := range p.assets {
		an.signature(a)
	}
	if p.config != nil {
		if problem := roundTripProblem(p.config.Type(), an.qual); problem != "" {
			errs.at(p.cfgPos, msgConfigRoundTrip, p.config.Name(), problem)
		}
	}
	for _, a := range p.assets {
		an.selectKind(a)
	}
	for _, a := range p.assets {
		if a.value != nil {
			keys, _ := an.producers.At(a.value).([]string)
			an.producers.Set(a.value, append(keys, a.key))
		}
	}
	for _, a := range p.assets {
		an.params(a)
		an.references(a)
	}
	an.routers()
	an.scheduleConfigs()
	an.sensors()
	an.checks()
	an.resources()
	an.generatedNames()
	an.order()
	codeVersions(p)
}

func (an *analyser) typeString(t types.Type) string { return types.TypeString(t, an.qual) }

// shortPos prints pos as file.go:line:col, for positions inside messages.
func (an *analyser) shortPos(pos token.Pos) string { return an.p.shortPos(pos) }

func (p *pipelineDecl) shortPos(pos token.Pos) string {
	position := p.pkg.Fset.Position(pos)
	position.Filename = filepath.Base(position.Filename)
	return position.String()
}

func (an *analyser) keys() {
	an.p.byKey = make(map[string]*asset, len(an.p.assets))
	kept := an.p.assets[:0]
	for _, a := range an.p.assets {
		if prev := an.p.byKey[a.key]; prev != nil {
			an.errs.at(a.fn.Name.Pos(), msgDuplicateKey, a.key, prev.fn.Name.Name, an.shortPos(prev.fn.Name.Pos()))
			continue
		}
		an.p.byKey[a.key] = a
		a.index = len(kept)
		kept = append(kept, a)
	}
	an.p.assets = kept
}

// signature checks the context parameter and the results, and records the
// value the asset produces.
func (an *analyser) signature(a *asset) {
	params := a.sig.Params()
	if params.Len() == 0 || !isNamed(params.At(0).Type(), "context", "Context") {
		an.errs.at(a.fn.Type.Params.Pos(), msgFirstParam, a.subject())
	}
	res := a.sig.Results()
	isErr := func(t types.Type) bool { return types.Identical(t, types.Universe.Lookup("error").Type()) }
	switch {
	case res.Len() == 1 && isErr(res.At(0).Type()):
	case res.Len() == 2 && isErr(res.At(1).Type()):
		a.result = res.At(0).Type()
		a.value = a.result
		expr := a.fn.Type.Results.List[0].Type
		if !an.checkType(a.subject(), expr, "result", a.result) {
			a.broken = true
		} else if a.opts["io"] == nil {
			// An IO manager is the codec of its assets' values.
			if problem := roundTripProblem(a.result, an.qual); problem != "" {
				an.errs.at(expr.Pos(), msgRoundTrip, a.key, an.typeString(a.result), problem)
			}
		}
	default:
		at := a.fn.Type.Pos()
		if a.fn.Type.Results != nil {
			at = a.fn.Type.Results.Pos()
		}
		an.errs.at(at, msgReturns, a.key, an.typeString(res))
		a.broken = true
	}
}

// checkType reports a type that does not type-check or that generated code
// cannot spell. It returns false for either.
func (an *analyser) checkType(subject string, expr ast.Expr, what string, t types.Type) bool {
	invalid, unexported := typeProblem(t, an.local)
	switch {
	case invalid:
		an.errs.at(expr.Pos(), msgBadType, subject, what, an.typeErrorIn(expr))
		return false
	case unexported != nil:
		pkg := "?"
		if n, ok := unexported.(interface{ Obj() *types.TypeName }); ok && n.Obj().Pkg() != nil {
			pkg = n.Obj().Pkg().Path()
		}
		an.errs.at(expr.Pos(), msgUnnameable, subject, what, an.typeString(t), pkg)
		return false
	}
	return true
}

// typeErrorIn returns ": <message>" for the first type error inside expr.
func (an *analyser) typeErrorIn(expr ast.Expr) string {
	fset := an.p.pkg.Fset
	start, end := fset.Position(expr.Pos()), fset.Position(expr.End())
	best := ""
	var bestPos token.Position
	for pos, msg := range an.p.typeErrs {
		if pos.Filename != start.Filename || pos.Line < start.Line || pos.Line > end.Line {
			continue
		}
		if pos.Line == start.Line && pos.Column < start.Column || pos.Line == end.Line && pos.Column > end.Column {
			continue
		}
		if best == "" || pos.Line < bestPos.Line || pos.Line == bestPos.Line && pos.Column < bestPos.Column {
			best, bestPos = msg, pos
		}
	}
	if best == "" {
		return ""
	}
	return ": " + best
}

// selectKind picks the asset's kind from its selector options (or an
// Outcome parameter) and rejects options of other kinds.
func (an *analyser) selectKind(a *asset) {
	var sel *optValue
	for _, o := range a.sortedOpts() {
		if !an.table.isSelector(o.optEntry) {
			continue
		}
		if sel != nil && sel.spec != o.spec {
			an.errs.at(o.pos, msgTwoKinds, a.key, sel.Name, o.Name, an.table.specs[sel.spec].Kind, an.table.specs[o.spec].Kind)
			continue
		}
		if sel == nil {
			sel = o
		}
	}
	switch {
	case sel != nil:
		a.kind = sel.spec
	case an.hasOutcomeParam(a):
		for i, s := range an.table.specs {
			if s.SelectedByOutcome {
				a.kind = i
				break
			}
		}
	}
	if a.kind >= 0 {
		a.kindSpec = &an.table.specs[a.kind]
	}
	for _, o := range a.sortedOpts() {
		if o.spec >= 0 && o.spec != a.kind && !(sel != nil && an.table.isSelector(o.optEntry)) {
			an.errs.at(o.pos, msgWrongKind, a.key, o.Name, an.table.selectorHint(o.spec))
		}
	}
	if a.kindName() == "router" && a.result != nil && !isNamed(a.result, flowstonePath, "Route") {
		an.errs.at(a.fn.Type.Results.Pos(), msgRouterReturns, a.key, an.typeString(a.sig.Results()))
	}
	if a.kindName() == "scatter" && a.result != nil {
		a.value = types.NewSlice(a.result)
	}
}

func (an *analyser) hasOutcomeParam(a *asset) bool {
	params := a.sig.Params()
	for i := 1; i < params.Len(); i++ {
		if outcomeOf(params.At(i).Type()) != nil {
			return true
		}
	}
	return false
}

// sortedOpts returns the asset's options in directive order.
func (a *asset) sortedOpts() []*optValue {
	out := make([]*optValue, 0, len(a.opts))
	for _, o := range a.opts {
		out = append(out, o)
	}
	slices.SortFunc(out, func(x, y *optValue) int { return x.raw.off - y.raw.off })
	return out
}

// kindName is the asset's kind: a spec's Kind, or standard.
func (a *asset) kindName() string {
	if a.kind < 0 {
		return strategy.StandardKind
	}
	return a.kindSpec.Kind
}

// opt returns the option's parsed value, or nil.
func (a *asset) opt(name string) any {
	if o := a.opts[name]; o != nil {
		return o.v
	}
	return nil
}

func (a *asset) optString(name string) string {
	s, _ := a.opt(name).(string)
	return s
}

// params classifies each parameter after the context.
func (an *analyser) params(a *asset) {
	sigParams := a.sig.Params()
	var item types.Type
	if src := an.p.byKey[a.optString("scatter")]; src != nil && src != a && src.value != nil {
		item = sliceElem(src.value)
	}
	idx := 0
	for _, field := range a.fn.Type.Params.List {
		names := field.Names
		if len(names) == 0 {
			names = []*ast.Ident{nil}
		}
		for _, id := range names {
			i := idx
			idx++
			if i == 0 || i >= sigParams.Len() {
				continue
			}
			v := sigParams.At(i)
			pm := &param{name: v.Name(), typ: v.Type(), pos: field.Type.Pos()}
			if id != nil {
				pm.pos = id.Pos()
			}
			a.params = append(a.params, pm)
			if _, ok := field.Type.(*ast.Ellipsis); ok {
				an.errs.at(pm.pos, msgVariadic, a.subject(), pm.name)
				continue
			}
			if !an.checkType(a.subject(), field.Type, "parameter "+displayName(pm, i), pm.typ) {
				continue
			}
			an.classify(a, pm, i, item)
		}
	}
	if item != nil {
		n := 0
		for _, pm := range a.params {
			if pm.role == roleItem {
				n++
			}
		}
		if n != 1 {
			src := a.optString("scatter")
			an.errs.at(a.fn.Name.Pos(), msgScatterItem, a.key, an.typeString(item), src+" ("+an.typeString(an.p.byKey[src].value)+")", n)
		}
	}
}

func displayName(pm *param, i int) string {
	if pm.name == "" || pm.name == "_" {
		return fmt.Sprintf("%d", i+1)
	}
	return pm.name
}

// classify decides where one parameter's argument comes from.
func (an *analyser) classify(a *asset, pm *param, i int, item types.Type) {
	t := pm.typ
	blank := pm.name == "" || pm.name == "_"
	switch {
	case isNamed(t, flowstonePath, "Partition"):
		pm.role = rolePartition
		return
	case an.p.config != nil && types.Identical(t, an.p.config.Type()):
		pm.role = roleConfig
		a.usesConfig = true
		an.p.usesCfg = true
		return
	}
	key := ""
	if !blank {
		key = snakeCase(pm.name)
	}
	up := an.p.byKey[key]
	if item != nil && types.Identical(t, item) && up == nil {
		pm.role = roleItem
		return
	}
	if blank {
		an.errs.at(pm.pos, msgUnnamedParam, a.subject(), i+1, an.typeString(t))
		return
	}
	if up == a {
		prev := previousOf(t)
		switch {
		case prev == nil && a.result != nil:
			an.errs.at(pm.pos, msgSelfParam, a.key, pm.name, an.typeString(a.result))
		case prev == nil:
			an.errs.at(pm.pos, msgSelfParam, a.key, pm.name, "T")
		case a.result == nil || !types.Identical(prev, a.result):
			produced := "no value"
			if a.result != nil {
				produced = an.typeString(a.result)
			}
			an.errs.at(pm.pos, msgPreviousType, a.key, pm.name, an.typeString(t), produced)
		case a.opts["partitions"] == nil:
			an.errs.at(pm.pos, msgPreviousUnpart, a.key, pm.name)
		default:
			pm.role, pm.dep, pm.elem = rolePrevious, a, prev
			a.deps = append(a.deps, dep{on: a, kind: depPrevious})
		}
		return
	}
	if up != nil {
		an.dependency(a, pm, up)
		return
	}
	switch {
	case previousOf(t) != nil:
		an.errs.at(pm.pos, msgPreviousName, a.key, pm.name, an.typeString(t), a.key)
		return
	case outcomeOf(t) != nil || partitionMapOf(t) != nil:
		an.errs.at(pm.pos, msgNoSuchDep, a.key, pm.name, an.typeString(t), key, didYouMean(key, an.assetKeys()))
		return
	}
	if cands, _ := an.producers.At(t).([]string); len(cands) > 0 {
		if near := nearest(key, cands); near != "" {
			an.errs.at(pm.pos, msgMisspelledDep, a.key, pm.name, near, an.typeString(t), lowerCamel(near))
			return
		}
	}
	pm.role = roleResource
	pm.field = upperFirst(pm.name)
	a.resources = append(a.resources, pm.name)
}

// lowerCamel is the parameter name that matches key: clean_orders →
// cleanOrders.
func lowerCamel(key string) string {
	c := camelCase(key)
	if c == "" {
		return c
	}
	return strings.ToLower(c[:1]) + c[1:]
}

// assetKeys lists the keys in source order, for suggestions.
func (an *analyser) assetKeys() []string {
	if an.keyList == nil {
		an.keyList = make([]string, len(an.p.assets))
		for i, a := range an.p.assets {
			an.keyList[i] = a.key
		}
	}
	return an.keyList
}

// dependency checks a parameter named after asset up.
func (an *analyser) dependency(a *asset, pm *param, up *asset) {
	t := pm.typ
	if up.broken {
		return
	}
	if up.result == nil {
		an.errs.at(pm.pos, msgDepNoValue, a.key, pm.name, up.key, up.key)
		return
	}
	pm.dep = up
	switch {
	case types.Identical(t, up.value):
		pm.role = roleValue
	case up.kindName() == "scatter" && outcomeOf(sliceElem(t)) != nil && types.Identical(outcomeOf(sliceElem(t)), up.result):
		// []flowstone.Outcome[T] of a scatter: every item's outcome.
		pm.role, pm.elem = roleOutcomes, up.result
	case outcomeOf(t) != nil && types.Identical(outcomeOf(t), up.value):
		pm.role, pm.elem = roleOutcome, outcomeOf(t)
	case partitionMapOf(t) != nil && types.Identical(partitionMapOf(t), up.value):
		pm.role, pm.elem = rolePartitions, partitionMapOf(t)
	default:
		an.errs.at(pm.pos, msgDepType, a.key, pm.name, an.typeString(t), up.key, an.typeString(up.value))
		return
	}
	mine, theirs := a.optString("partitions"), up.optString("partitions")
	switch {
	case pm.role == rolePartitions && theirs == "":
		an.errs.at(pm.pos, msgUnpartitionedMap, a.key, pm.name, up.key, up.key)
		return
	case pm.role == rolePartitions && mine == theirs:
		an.errs.at(pm.pos, msgSamePartsMap, a.key, pm.name, a.key, up.key, mine, an.typeString(up.value))
		return
	case pm.role != rolePartitions && theirs != "" && mine != theirs:
		how := "is unpartitioned"
		if mine != "" {
			how = "is partitioned by " + mine
		}
		an.errs.at(pm.pos, msgPartitionedDep, a.key, pm.name, up.key, theirs, a.key, how, an.typeString(up.value))
		return
	}
	kind := map[paramRole]depKind{roleValue: depValue, roleOutcomes: depValue, roleOutcome: depOutcome, rolePartitions: depPartitions}[pm.role]
	a.deps = append(a.deps, dep{on: up, kind: kind})
}

// references resolves deps=, routed_from=, fallback=, scatter= and the
// Ident options.
func (an *analyser) references(a *asset) {
	if o := a.opts["deps"]; o != nil {
		for _, k := range o.v.([]string) {
			up := an.p.byKey[k]
			switch {
			case k == a.key:
				an.errs.at(o.pos, msgSelfDep, a.key, k)
			case up == nil:
				an.errs.at(o.pos, msgUnknownDep, a.subject(), "deps", k, k, didYouMean(k, an.assetKeys()))
			default:
				if pm := a.paramFor(up); pm != nil {
					an.errs.at(o.pos, msgRepeatedDep, a.key, k, pm.name)
					continue
				}
				a.deps = append(a.deps, dep{on: up, kind: depOrder})
			}
		}
	}
	for _, o := range a.sortedOpts() {
		switch o.Type {
		case strategy.AssetKey:
			k := o.v.(string)
			up := an.p.byKey[k]
			switch {
			case up == nil:
				an.errs.at(o.pos, msgUnknownDep, a.subject(), o.Name, k, k, didYouMean(k, an.assetKeys()))
			case o.Name == "routed_from" && up.kindName() != "router":
				an.errs.at(o.pos, msgNotRouter, a.key, k, k)
			case o.Name == "routed_from":
				up.branches = append(up.branches, a)
				if a.paramFor(up) == nil {
					a.deps = append(a.deps, dep{on: up, kind: depOrder})
				}
			case o.Name == "scatter" && up == a:
				an.errs.at(o.pos, msgScatterSelf, a.key, k)
			case o.Name == "scatter" && up.value != nil && sliceElem(up.value) == nil:
				an.errs.at(o.pos, msgScatterSource, a.key, k, k, an.typeString(up.value))
			case o.Name == "scatter" && up.value == nil:
				an.errs.at(o.pos, msgScatterSource, a.key, k, k, "no value")
			case o.Name == "scatter":
				if a.paramFor(up) == nil {
					a.deps = append(a.deps, dep{on: up, kind: depOrder})
				}
			}
		case strategy.Ident:
			an.ident(a, o)
		}
	}
}

// identInterface names the interface an Ident option's variable must
// implement, by option name.
func identInterface(option string) (path, name string, ok bool) {
	switch option {
	case "partitions":
		return flowstonePath, "PartitionSet", true
	case "io":
		return runtimePath, "IOManager", true
	case "strategy":
		return strategyPath, "Strategy", true
	}
	return "", "", false
}

func (an *analyser) ident(a *asset, o *optValue) {
	name := o.v.(string)
	obj := an.local.Scope().Lookup(name)
	if obj == nil {
		var vars []string
		for _, n := range an.local.Scope().Names() {
			if _, ok := an.local.Scope().Lookup(n).(*types.Var); ok {
				vars = append(vars, n)
			}
		}
		an.errs.at(o.pos, msgIdentMissing, a.key, o.Name, name, name, didYouMean(name, vars))
		return
	}
	v, ok := obj.(*types.Var)
	if !ok {
		an.errs.at(o.pos, msgIdentNotVar, a.key, o.Name, name, name)
		return
	}
	if o.Name == "config" {
		an.configDefault(a, o, v)
		return
	}
	if path, iface, ok := identInterface(o.Name); ok && !implements(an.local, v.Type(), path, iface) {
		pkgName := path[strings.LastIndexByte(path, '/')+1:]
		an.errs.at(o.pos, msgIdentType, a.key, o.Name, name, name, an.typeString(v.Type()), pkgName+"."+iface)
		return
	}
	if o.Name == "io" && storesParquet(v.Type()) {
		an.parquetValue(a, o, name)
	}
}

// configDefault checks config=: a value of the pipeline's config type.
func (an *analyser) configDefault(a *asset, o *optValue, v *types.Var) {
	switch cfg := an.p.config; {
	case cfg == nil:
		an.errs.at(o.pos, msgConfigNoType, a.key, v.Name())
	case !types.Identical(v.Type(), cfg.Type()) && !types.Identical(v.Type(), types.NewPointer(cfg.Type())):
		an.errs.at(o.pos, msgConfigDefaultType, a.key, v.Name(), v.Name(), an.typeString(v.Type()), cfg.Name())
	}
}

// scheduleConfigs reports a scheduled asset whose run needs a config
// (the asset or an upstream takes it) but that names no config= default:
// every tick would fail.
func (an *analyser) scheduleConfigs() {
	for _, a := range an.p.assets {
		sched, what := a.opts["schedule"], "scheduled"
		if sched == nil {
			sched, what = a.opts["auto"], "automated"
		}
		if sched == nil || a.opts["config"] != nil || an.p.config == nil {
			continue
		}
		if user := configUser(a, map[*asset]bool{}); user != nil {
			who := "it takes"
			if user != a {
				who = "its upstream " + user.key + " takes"
			}
			an.errs.at(sched.pos, msgScheduleConfig, a.key, what, who, an.p.config.Name(), an.p.config.Name())
		}
	}
}

// configUser returns a or an asset it depends on that takes the run
// config, or nil.
func configUser(a *asset, seen map[*asset]bool) *asset {
	if seen[a] {
		return nil
	}
	seen[a] = true
	if a.usesConfig {
		return a
	}
	for _, d := range a.deps {
		if u := configUser(d.on, seen); u != nil {
			return u
		}
	}
	return nil
}

// paramFor returns the parameter through which a depends on up, or nil.
func (a *asset) paramFor(up *asset) *param {
	for _, pm := range a.params {
		if pm.dep == up && pm.role != rolePrevious {
			return pm
		}
	}
	return nil
}

// routers checks each router's branches and fallback.
func (an *analyser) routers() {
	for _, a := range an.p.assets {
		if a.kindName() != "router" {
			continue
		}
		if len(a.branches) == 0 {
			an.errs.at(a.fn.Name.Pos(), msgNoBranches, a.key, a.key)
			continue
		}
		if o := a.opts["fallback"]; o != nil {
			fb := o.v.(string)
			names := make([]string, len(a.branches))
			isBranch := false
			for i, b := range a.branches {
				names[i] = b.key
				isBranch = isBranch || b.key == fb
			}
			if !isBranch && an.p.byKey[fb] != nil {
				an.errs.at(o.pos, msgFallback, a.key, fb, strings.Join(names, ", "))
			}
		}
	}
}

// resources builds the Resources struct: one field per resource name, one
// type per name across the package, assets' and sensors' parameters alike.
func (an *analyser) resources() {
	byName := map[string]*resource{}
	byField := map[string]*resource{}
	add := func(subject string, pm *param) {
		if r := byName[pm.name]; r != nil {
			if !types.Identical(r.typ, pm.typ) {
				an.errs.at(pm.pos, msgResourceType, subject, pm.name, an.typeString(pm.typ), an.typeString(r.typ), an.shortPos(r.pos))
			}
			return
		}
		r := &resource{name: pm.name, field: pm.field, typ: pm.typ, pos: pm.pos, owner: subject}
		if other := byField[r.field]; other != nil {
			an.errs.at(pm.pos, msgResourceField, subject, other.name, pm.name, r.field)
			return
		}
		byName[pm.name], byField[r.field] = r, r
		an.p.resources = append(an.p.resources, *r)
	}
	for _, a := range an.p.assets {
		for _, pm := range a.params {
			if pm.role == roleResource {
				add(a.subject(), pm)
			}
		}
	}
	for _, s := range an.p.sensors {
		for _, pm := range s.params {
			if pm.role == roleResource {
				add(s.subject(), pm)
			}
		}
	}
	for _, c := range an.p.checks {
		for _, pm := range c.params {
			add(c.subject(), pm)
		}
	}
	slices.SortFunc(an.p.resources, func(x, y resource) int { return strings.Compare(x.field, y.field) })
}

// generatedNames rejects package-level names that the generated file would
// redeclare.
func (an *analyser) generatedNames() {
	scope := an.local.Scope()
	clash := func(name string) types.Object {
		obj := scope.Lookup(name)
		if obj == nil || filepath.Base(an.p.pkg.Fset.Position(obj.Pos()).Filename) == GenFileName {
			return nil
		}
		return obj
	}
	for _, name := range []string{"Pipeline", "Resources", sourcesVar} {
		if obj := clash(name); obj != nil {
			an.errs.at(obj.Pos(), msgReservedName, name)
		}
	}
	taken := map[string]token.Pos{}
	claim := func(subject string, at token.Pos, names []string) {
		for _, n := range names {
			if obj := clash(n); obj != nil {
				an.errs.at(at, msgNameCollision, subject, n, an.shortPos(obj.Pos()))
			} else if other, ok := taken[n]; ok {
				an.errs.at(at, msgNameCollision, subject, n, an.shortPos(other))
			}
			taken[n] = at
		}
	}
	for _, a := range an.p.assets {
		names := []string{"Asset" + a.ident, wrapperName(a), defName(a)}
		if a.result != nil {
			names = append(names, "Load"+a.ident)
		}
		claim(a.subject(), a.fn.Name.Pos(), names)
	}
	for _, s := range an.p.sensors {
		claim(s.subject(), s.fn.Name.Pos(), []string{"Sensor" + s.ident, sensorWrapperName(s)})
	}
	for _, c := range an.p.checks {
		claim(c.subject(), c.fn.Name.Pos(), []string{checkWrapperName(c)})
	}
}

// order sorts the assets topologically, ties by source order, and reports
// every cycle with its path.
func (an *analyser) order() {
	assets := an.p.assets
	indeg := make([]int, len(assets))
	down := make([][]int, len(assets))
	for _, a := range assets {
		seen := map[*asset]bool{}
		for _, d := range a.deps {
			if d.kind == depPrevious || seen[d.on] {
				continue
			}
			seen[d.on] = true
			indeg[a.index]++
			down[d.on.index] = append(down[d.on.index], a.index)
		}
	}
	q := &intHeap{}
	for i, n := range indeg {
		if n == 0 {
			heap.Push(q, i)
		}
	}
	for q.Len() > 0 {
		i := heap.Pop(q).(int)
		an.p.order = append(an.p.order, assets[i])
		for _, j := range down[i] {
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(q, j)
			}
		}
	}
	if len(an.p.order) < len(assets) {
		an.cycles(indeg)
	}
}

// cycles reports one path per cycle among the assets left unsorted.
func (an *analyser) cycles(indeg []int) {
	assets := an.p.assets
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(assets))
	var stack []*asset
	var visit func(a *asset)
	visit = func(a *asset) {
		color[a.index] = grey
		stack = append(stack, a)
		for _, d := range a.deps {
			if d.kind == depPrevious {
				continue
			}
			switch color[d.on.index] {
			case white:
				visit(d.on)
			case grey:
				start := slices.Index(stack, d.on)
				cyc := slices.Clone(stack[start:])
				// Start the path at the cycle's first asset in source order.
				first := 0
				for i, c := range cyc {
					if c.index < cyc[first].index {
						first = i
					}
				}
				cyc = append(cyc[first:], cyc[:first]...)
				path := make([]string, 0, len(cyc)+1)
				for _, c := range cyc {
					path = append(path, c.key)
				}
				path = append(path, cyc[0].key)
				an.errs.at(cyc[0].fn.Name.Pos(), msgCycle, strings.Join(path, " → "))
			}
		}
		stack = stack[:len(stack)-1]
		color[a.index] = black
	}
	for _, a := range assets {
		if indeg[a.index] > 0 && color[a.index] == white {
			visit(a)
		}
	}
}

// intHeap is a min-heap of source indexes.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
