package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"
	"time"

	"github.com/flowstone-go/flowstone/strategy"
)

// The //flowstone:sensor directive: its options, the function's shape, its
// targets and resources. The emitter writes its constant, its SensorDef and
// its wrapper (emit.go).

// sensorOptions is the grammar of //flowstone:sensor, sorted by name.
// name= is read first, by parseSensor itself, so that every other message
// names the sensor as the user named it.
func sensorOptions() []strategy.Option {
	return []strategy.Option{
		{Name: "every", Type: strategy.Duration},
		{Name: "name", Type: strategy.AssetKey},
		{Name: "targets", Type: strategy.AssetKeys},
	}
}

// parseSensor checks a sensor directive's options and that the function is
// a plain top-level function. The signature and targets are checked by the
// analysis, which knows the assets.
func (p *pipelineDecl) parseSensor(fd *ast.FuncDecl, d *directive, errs *errorList) *sensor {
	s := &sensor{fn: fd, dir: d, name: snakeCase(fd.Name.Name), ident: upperFirst(fd.Name.Name)}
	s.desc = strings.TrimSpace(fd.Doc.Text())
	for _, o := range d.opts {
		if o.name == "name" && o.hasValue {
			if !validKey(o.value) {
				errs.at(d.pos+token.Pos(o.off), msgSensorName, s.name, o.value)
			} else {
				s.name, s.ident = o.value, camelCase(o.value)
			}
			break
		}
	}
	seen := grammar{
		table:   sensorOptions(),
		subject: s.subject(),
		example: func(o strategy.Option) string {
			if o.Name == "name" {
				return "sensor_name"
			}
			return typeWord(o.Type)
		},
	}.parse(d, errs, func(o rawOption, pos token.Pos, v any) {
		switch o.name {
		case "every":
			s.every = v.(time.Duration)
		case "targets":
			s.targets = v.([]string)
			// Point at each target when the value is written unquoted, at
			// the option otherwise.
			at := o.off + len("targets=")
			exact := strings.HasPrefix(d.text[at:], o.value)
			for _, k := range s.targets {
				if exact {
					s.targetsAt = append(s.targetsAt, d.pos+token.Pos(at))
					at += len(k) + 1
				} else {
					s.targetsAt = append(s.targetsAt, pos)
				}
			}
		}
	})
	if !seen["every"] {
		errs.at(d.pos, msgSensorRequired, s.name, "every", "every=D, how often the engine evaluates the sensor (every=30s)")
	}
	if !seen["targets"] {
		errs.at(d.pos, msgSensorRequired, s.name, "targets", "targets=a,b, the assets its run requests materialize")
	}

	if fd.Recv != nil {
		recv := "?"
		if len(fd.Recv.List) == 1 {
			recv = types.ExprString(fd.Recv.List[0].Type)
		}
		errs.at(fd.Name.Pos(), msgMethod, s.subject(), "("+recv+")."+fd.Name.Name, "a sensor")
		return nil
	}
	if fd.Type.TypeParams != nil {
		errs.at(fd.Name.Pos(), msgGeneric, s.subject(), fd.Name.Name, "a sensor")
		return nil
	}
	obj, ok := p.pkg.Types.Scope().Lookup(fd.Name.Name).(*types.Func)
	if !ok || obj.Pos() != fd.Name.Pos() {
		// A redeclared name: the type checker reports it.
		return nil
	}
	s.sig = obj.Type().(*types.Signature)
	return s
}

// sensors checks the sensors against each other and the assets: unique
// names, targets that exist, the signature and the resource parameters.
func (an *analyser) sensors() {
	byName := map[string]*sensor{}
	kept := an.p.sensors[:0]
	for _, s := range an.p.sensors {
		if prev := byName[s.name]; prev != nil {
			an.errs.at(s.fn.Name.Pos(), msgDuplicateSensor, s.name, prev.fn.Name.Name, an.shortPos(prev.fn.Name.Pos()))
			continue
		}
		byName[s.name] = s
		kept = append(kept, s)
	}
	an.p.sensors = kept
	for _, s := range an.p.sensors {
		an.sensorTargets(s)
		an.sensorSignature(s)
	}
}

// sensorTargets reports targets that name no asset.
func (an *analyser) sensorTargets(s *sensor) {
	for i, k := range s.targets {
		if an.p.byKey[k] == nil {
			an.errs.at(s.targetsAt[i], msgUnknownDep, s.subject(), "targets", k, k, didYouMean(k, an.assetKeys()))
		}
	}
}

// sensorSignature checks func(ctx context.Context, cursor string,
// resources...) (flowstone.SensorResult, error) and classifies the
// resources.
func (an *analyser) sensorSignature(s *sensor) {
	type slot struct {
		id    *ast.Ident // nil for an unnamed parameter
		field *ast.Field
	}
	var slots []slot
	for _, field := range s.fn.Type.Params.List {
		if len(field.Names) == 0 {
			slots = append(slots, slot{nil, field})
		}
		for _, id := range field.Names {
			slots = append(slots, slot{id, field})
		}
	}
	params := s.sig.Params()
	if params.Len() == 0 || !isNamed(params.At(0).Type(), "context", "Context") {
		an.errs.at(s.fn.Type.Params.Pos(), msgFirstParam, s.subject())
		s.broken = true
	}
	switch {
	case params.Len() < 2 && s.broken:
		// func(cursor string) lacks the context, not the cursor.
	case params.Len() < 2:
		an.errs.at(s.fn.Type.Params.Closing, msgSensorCursor, s.name, "no second parameter")
		s.broken = true
	default:
		v := params.At(1)
		name := v.Name()
		if !types.Identical(v.Type(), types.Typ[types.String]) || name != "cursor" && name != "_" && name != "" {
			found := an.typeString(v.Type())
			if name != "" {
				found = name + " " + found
			}
			at := slots[1].field.Type.Pos()
			if slots[1].id != nil {
				at = slots[1].id.Pos()
			}
			an.errs.at(at, msgSensorCursor, s.name, found)
			s.broken = true
		}
	}
	res := s.sig.Results()
	if res.Len() != 2 || !isNamed(res.At(0).Type(), flowstonePath, "SensorResult") ||
		!types.Identical(res.At(1).Type(), types.Universe.Lookup("error").Type()) {
		at := s.fn.Type.Pos()
		if s.fn.Type.Results != nil {
			at = s.fn.Type.Results.Pos()
		}
		an.errs.at(at, msgSensorReturns, s.name, an.typeString(res))
		s.broken = true
	}
	for i := 2; i < params.Len() && i < len(slots); i++ {
		v := params.At(i)
		pm := &param{name: v.Name(), typ: v.Type(), pos: slots[i].field.Type.Pos()}
		if slots[i].id != nil {
			pm.pos = slots[i].id.Pos()
		}
		if _, ok := slots[i].field.Type.(*ast.Ellipsis); ok {
			an.errs.at(pm.pos, msgVariadic, s.subject(), pm.name)
			continue
		}
		if !an.checkType(s.subject(), slots[i].field.Type, "parameter "+displayName(pm, i), pm.typ) {
			continue
		}
		if pm.name == "" || pm.name == "_" {
			an.errs.at(pm.pos, msgUnnamedParam, s.subject(), i+1, an.typeString(pm.typ))
			continue
		}
		t := pm.typ
		if isNamed(t, flowstonePath, "Partition") || an.p.config != nil && types.Identical(t, an.p.config.Type()) ||
			outcomeOf(t) != nil || previousOf(t) != nil || partitionMapOf(t) != nil {
			an.errs.at(pm.pos, msgSensorParamType, s.name, pm.name, an.typeString(t))
			continue
		}
		if up := an.p.byKey[snakeCase(pm.name)]; up != nil {
			an.errs.at(pm.pos, msgSensorParamAsset, s.name, pm.name, up.key)
			continue
		}
		pm.role, pm.field = roleResource, upperFirst(pm.name)
		s.params = append(s.params, pm)
		s.resources = append(s.resources, pm.name)
	}
}

func sensorWrapperName(s *sensor) string { return "runSensor" + s.ident }

// sensorLabel describes s in generated comments: new_orders (NewOrders).
func sensorLabel(s *sensor) string { return fmt.Sprintf("%s sensor (%s)", s.name, s.fn.Name.Name) }
