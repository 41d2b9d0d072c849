package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/tools/go/packages"

	"github.com/flowstone-go/flowstone/strategy"
)

// parsePackage finds the package's directives and checks their syntax and
// options. It resolves nothing across assets; analyse does that.
func parsePackage(pkg *loadedPackage, table *optionTable, errs *errorList) *pipelineDecl {
	p := &pipelineDecl{
		pkg:      pkg,
		dir:      pkg.Dir,
		name:     pkg.Name,
		typeErrs: map[token.Position]string{},
	}
	for _, e := range pkg.Errors {
		errs.add(e)
	}
	for _, e := range pkg.TypeErrors {
		pos := e.Fset.Position(e.Pos)
		if _, seen := p.typeErrs[pos]; !seen {
			p.typeErrs[pos] = e.Msg
		}
	}
	if pkg.Types == nil {
		return p
	}
	for _, f := range pkg.Syntax {
		name := pkg.Fset.File(f.FileStart).Name()
		if p.dir == "" {
			p.dir = filepath.Dir(name)
		}
		if filepath.Base(name) == GenFileName {
			continue
		}
		p.parseFile(f, table, errs)
	}
	return p
}

// parsePos reads "file:line:col" as go/packages prints positions.
func parsePos(s string) (token.Position, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return token.Position{}, false
	}
	j := strings.LastIndexByte(s[:i], ':')
	if j < 0 {
		return token.Position{}, false
	}
	line, err1 := strconv.Atoi(s[j+1 : i])
	col, err2 := strconv.Atoi(s[i+1:])
	if err1 != nil || err2 != nil {
		return token.Position{}, false
	}
	return token.Position{Filename: s[:j], Line: line, Column: col}, true
}

func packageError(e packages.Error) error {
	if pos, ok := parsePos(e.Pos); ok {
		return &Error{Pos: pos, Msg: e.Msg}
	}
	return fmt.Errorf("%s: %w", e.Pos, fmt.Errorf("%s", e.Msg))
}

// docOwner is what a comment group documents.
type docOwner struct {
	fn   *ast.FuncDecl
	typ  *ast.TypeSpec
	file bool
}

func (p *pipelineDecl) parseFile(f *ast.File, table *optionTable, errs *errorList) {
	owners := map[*ast.CommentGroup]docOwner{}
	if f.Doc != nil {
		owners[f.Doc] = docOwner{file: true}
	}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Doc != nil {
				owners[d.Doc] = docOwner{fn: d}
			}
		case *ast.GenDecl:
			if d.Tok != token.TYPE {
				continue
			}
			if d.Doc != nil && !d.Lparen.IsValid() && len(d.Specs) == 1 {
				owners[d.Doc] = docOwner{typ: d.Specs[0].(*ast.TypeSpec)}
			}
			for _, s := range d.Specs {
				if ts := s.(*ast.TypeSpec); ts.Doc != nil {
					owners[ts.Doc] = docOwner{typ: ts}
				}
			}
		}
	}
	for _, g := range f.Comments {
		var seen *directive
		for _, c := range g.List {
			if !strings.Contains(strings.ToLower(c.Text), "flowstone") {
				continue // the common case: an ordinary comment
			}
			d, derrs := scanComment(c.Text)
			for _, e := range derrs {
				errs.at(c.Slash+token.Pos(e.off), "%s", e.msg)
			}
			if d == nil {
				continue
			}
			d.pos = c.Slash
			p.directives = true
			owner := owners[g]
			if seen != nil {
				if seen.verb != d.verb {
					errs.at(d.pos, msgTwoDirectives, describeOwner(owner), seen.verb, d.verb)
				} else {
					errs.at(d.pos, msgDuplicateDirective, d.verb, describeOwner(owner))
				}
				continue
			}
			seen = d
			switch d.verb {
			case "asset":
				if owner.fn == nil {
					errs.at(d.pos, msgMisplacedFunc, d.verb)
					continue
				}
				if a := p.parseAsset(owner.fn, d, table, errs); a != nil {
					p.assets = append(p.assets, a)
				}
			case "sensor":
				if owner.fn == nil {
					errs.at(d.pos, msgMisplacedFunc, d.verb)
					continue
				}
				if s := p.parseSensor(owner.fn, d, errs); s != nil {
					p.sensors = append(p.sensors, s)
				}
			case "check":
				if owner.fn == nil {
					errs.at(d.pos, msgMisplacedFunc, d.verb)
					continue
				}
				if c := p.parseCheck(owner.fn, d, errs); c != nil {
					p.checks = append(p.checks, c)
				}
			case "config":
				if owner.typ == nil {
					errs.at(d.pos, msgMisplacedConfig)
					continue
				}
				p.parseConfig(owner.typ, d, errs)
			case "pipeline":
				if !owner.file {
					errs.at(d.pos, msgMisplacedPipeline)
					continue
				}
				p.parsePipeline(d, errs)
			}
		}
	}
}

func describeOwner(o docOwner) string {
	switch {
	case o.fn != nil:
		return o.fn.Name.Name
	case o.typ != nil:
		return o.typ.Name.Name
	case o.file:
		return "the package"
	}
	return "this comment"
}

func (p *pipelineDecl) parsePipeline(d *directive, errs *errorList) {
	if p.namePos.IsValid() {
		errs.at(d.pos, msgSecondPipeline, p.shortPos(p.namePos))
		return
	}
	p.namePos = d.pos
	for _, o := range d.opts {
		pos := d.pos + token.Pos(o.off)
		switch {
		case o.name != "name":
			errs.at(pos, msgPipelineOption, o.name, didYouMean(o.name, []string{"name"}))
		case !validKey(o.value):
			errs.at(pos, msgPipelineName, o.value)
		default:
			p.name = o.value
		}
	}
}

func (p *pipelineDecl) parseConfig(ts *ast.TypeSpec, d *directive, errs *errorList) {
	if len(d.opts) > 0 {
		errs.at(d.pos+token.Pos(d.opts[0].off), msgConfigOptions)
	}
	if ts.TypeParams != nil {
		errs.at(ts.Name.Pos(), msgConfigGeneric, ts.Name.Name)
		return
	}
	tn, ok := p.pkg.Types.Scope().Lookup(ts.Name.Name).(*types.TypeName)
	if !ok {
		return
	}
	if p.config != nil {
		errs.at(ts.Name.Pos(), msgSecondConfig, ts.Name.Name, p.config.Name(), p.shortPos(p.cfgPos))
		return
	}
	p.config, p.cfgPos = tn, ts.Name.Pos()
}

// parseAsset checks an asset directive's options and the function's shape.
func (p *pipelineDecl) parseAsset(fd *ast.FuncDecl, d *directive, table *optionTable, errs *errorList) *asset {
	a := &asset{fn: fd, dir: d, index: len(p.assets), key: snakeCase(fd.Name.Name), ident: upperFirst(fd.Name.Name), kind: -1}
	a.desc = strings.TrimSpace(fd.Doc.Text())
	a.opts = map[string]*optValue{}
	for _, o := range d.opts {
		pos := d.pos + token.Pos(o.off)
		if o.name == "name" && o.hasValue {
			if !validKey(o.value) {
				errs.at(pos, msgBadKey, a.key, o.value)
			} else {
				a.key, a.ident = o.value, camelCase(o.value)
			}
		}
	}
	for _, o := range d.opts {
		pos := d.pos + token.Pos(o.off)
		e, ok := table.byName[o.name]
		switch {
		case !ok:
			errs.at(pos, msgUnknownOption, a.subject(), o.name, didYouMean(o.name, table.names))
			continue
		case a.opts[o.name] != nil:
			errs.at(pos, msgDuplicateOption, a.subject(), o.name)
			continue
		case e.Type == strategy.Flag && o.hasValue:
			errs.at(pos, msgFlagWithValue, a.key, o.name)
			continue
		case e.Type != strategy.Flag && !o.hasValue:
			example := typeWord(e.Type)
			if e.Type == strategy.Enum {
				example = strings.Join(e.Enum, "|")
			}
			errs.at(pos, msgMissingValue, a.subject(), o.name, o.name, example)
			continue
		}
		v, problem := parseValue(e.Option, o.value)
		if problem != "" {
			shown := o.value
			if strings.ContainsAny(shown, " \t\"") {
				shown = strconv.Quote(shown)
			}
			errs.at(pos, msgBadValue, a.subject(), o.name, shown, problem)
			continue
		}
		a.opts[o.name] = &optValue{optEntry: e, raw: o, pos: pos, v: v}
	}
	for name, o := range a.opts {
		if o.Requires == "" {
			continue
		}
		alts := strings.Split(o.Requires, "|")
		if !slices.ContainsFunc(alts, func(r string) bool { return a.opts[r] != nil }) {
			errs.at(o.pos, msgRequires, a.key, name, strings.Join(alts, " or "))
		}
	}

	if fd.Recv != nil {
		recv := "?"
		if len(fd.Recv.List) == 1 {
			recv = types.ExprString(fd.Recv.List[0].Type)
		}
		errs.at(fd.Name.Pos(), msgMethod, a.subject(), "("+recv+")."+fd.Name.Name, "an asset")
		return nil
	}
	if fd.Type.TypeParams != nil {
		errs.at(fd.Name.Pos(), msgGeneric, a.subject(), fd.Name.Name, "an asset")
		return nil
	}
	obj, ok := p.pkg.Types.Scope().Lookup(fd.Name.Name).(*types.Func)
	if !ok || obj.Pos() != fd.Name.Pos() {
		// A redeclared name. Type errors are otherwise left to go build,
		// but dropping the asset silently would hide it until then.
		msg := p.typeErrs[p.pkg.Fset.Position(fd.Name.Pos())]
		if msg == "" {
			msg = fd.Name.Name + " is declared more than once"
		}
		errs.at(fd.Name.Pos(), msgRedeclared, a.subject(), msg)
		return nil
	}
	a.obj = obj
	a.sig = obj.Type().(*types.Signature)
	return a
}
