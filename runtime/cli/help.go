package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime"
	"github.com/spf13/cobra"
)

// facts are what help examples are made of: names from the program's own
// pipeline, so its help speaks of its assets, partitions and config.
type facts struct {
	name string // the program, and --pipeline P when it binds several
	// target is the value asset with the most upstream; up one it reads.
	target, up string
	group, tag string
	// partition is a key of the target's set ("" when it is
	// unpartitioned); from and to a range of the first partitioned
	// asset's set, partitioned up to two partitioned assets.
	partition, from, to string
	partitioned         []string
	config              string // --config '...' when the target takes config
	dynamic, dynamicKey string
	// gate is a gate asset, gateKey a key of its set when partitioned.
	gate, gateKey string
}

// pipelineFacts describes p for examples; p may be nil (no pipeline
// could be bound), and then the examples show placeholders.
func (s *session) pipelineFacts(p *runtime.Pipeline, several bool) facts {
	f := facts{name: s.app.Name, target: "ASSET", up: "ASSET", gate: "GATE_ASSET", dynamic: "SET", dynamicKey: "KEY"}
	if p == nil {
		f.partition, f.from, f.to, f.partitioned = "KEY", "FROM", "TO", []string{"ASSET"}
		return f
	}
	if several {
		f.name += " --pipeline " + p.Name()
	}
	best := -1
	for _, a := range p.Assets() {
		closure, _ := p.Closure([]string{a.Key})
		if a.HasValue && len(closure) >= best {
			best, f.target = len(closure), a.Key
		}
		if f.group == "" {
			f.group = a.Group
		}
		if f.tag == "" && len(a.Tags) > 0 {
			f.tag = a.Tags[0]
		}
		if a.Partitions != nil && len(f.partitioned) < 2 {
			f.partitioned = append(f.partitioned, a.Key)
		}
		if d, ok := a.Partitions.(*flowstone.DynamicSet); ok && f.dynamic == "SET" {
			f.dynamic, f.dynamicKey = d.Name(), string(d.Example())
		}
		if a.Kind == "gate" && f.gate == "GATE_ASSET" {
			f.gate = a.Key
			if a.Partitions != nil {
				f.gateKey = string(a.Partitions.Example())
			}
		}
	}
	if len(f.partitioned) == 0 {
		f.partitioned = []string{"ASSET"}
	} else {
		f.from, f.to = keyRange(p.Asset(f.partitioned[0]).Partitions)
	}
	t := p.Asset(f.target)
	if t == nil {
		return f
	}
	f.up = t.Key
	for _, d := range t.Deps {
		if d.Kind != runtime.DepPrevious {
			f.up = d.Asset
		}
	}
	if t.Partitions != nil {
		f.partition = string(t.Partitions.Example())
	}
	closure, _ := p.Closure([]string{t.Key})
	for _, a := range closure {
		if a.UsesConfig && p.Config() != nil {
			f.config = " --config '" + configExample(p.Config()) + "'"
			break
		}
	}
	return f
}

// keyRange returns a week of a time set's keys from its example, or the
// example alone.
func keyRange(set flowstone.PartitionSet) (from, to string) {
	k := set.Example()
	from, to = string(k), string(k)
	if tw, ok := set.(flowstone.TimeWindowSet); ok {
		for range 6 {
			next, ok := tw.Next(k)
			if !ok {
				break
			}
			k, to = next, string(next)
		}
	}
	return from, to
}

// configExample is the config type's zero value as JSON, the shape a
// --config takes.
func configExample(spec *runtime.ConfigSpec) string {
	zero, err := spec.Decode([]byte("{}"))
	if err != nil {
		return "{}"
	}
	b, err := json.Marshal(zero)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// flag returns " --name value", or "" when value is empty.
func flagIf(name, value string) string {
	if value == "" {
		return ""
	}
	return " --" + name + " " + value
}

// examples returns the Example text of the command at path (as "backfill
// status"), made of f, or "" for a command without examples.
func examples(path string, f facts) string {
	part := flagIf("partition", f.partition)
	var lines []string
	switch path {
	case "materialize":
		lines = []string{
			f.name + " materialize" + part + f.config,
			f.name + " materialize +" + f.target + part + f.config + " --force",
			f.name + " materialize " + f.up + "+1" + part + f.config + " --detach",
		}
		if f.group != "" {
			lines = append(lines, f.name+" materialize group:"+f.group+part+f.config)
		}
	case "assets":
		lines = []string{f.name + " assets"}
		switch {
		case f.group != "":
			lines = append(lines, f.name+" assets group:"+f.group)
		case f.tag != "":
			lines = append(lines, f.name+" assets tag:"+f.tag)
		default:
			lines = append(lines, f.name+" assets +"+f.target)
		}
	case "backfill":
		bf := f.partitioned[0]
		if f.partition != "" {
			bf = f.target
		}
		lines = []string{
			f.name + " backfill " + bf + flagIf("from", f.from) + flagIf("to", f.to) + f.config,
			f.name + " backfill " + bf + " --partitions " + f.from + ",...," + f.to + f.config + " --force",
			f.name + " backfill status BACKFILL_ID",
			f.name + " backfill cancel BACKFILL_ID",
		}
	case "partitions":
		lines = []string{
			f.name + " partitions " + f.partitioned[0] + flagIf("from", f.from) + flagIf("to", f.to),
			f.name + " partitions " + strings.Join(f.partitioned, " ") + " --last 7",
		}
	case "dynamic":
		lines = []string{
			f.name + " dynamic add " + f.dynamic + " " + f.dynamicKey,
			f.name + " dynamic remove " + f.dynamic + " " + f.dynamicKey,
			f.name + " dynamic list " + f.dynamic,
		}
	case "approve", "reject":
		lines = []string{fmt.Sprintf(`%s %s RUN_ID %s --by ana --reason "checked"`, f.name, path, f.gate)}
		if f.gateKey != "" {
			lines = append(lines, fmt.Sprintf(`%s %s RUN_ID %s --partition %s --by ana`, f.name, path, f.gate, f.gateKey))
		}
	case "gate-link":
		lines = []string{f.name + " gate-link RUN_ID " + f.gate + flagIf("partition", f.gateKey) + " --ttl 24h --base-url https://ops.example.com/gate"}
	default:
		return ""
	}
	return "  " + strings.Join(lines, "\n  ")
}

// explain fills in c's examples and flag hints from the bound pipelines
// before its help is shown.
func (s *session) explain(c *cobra.Command) {
	var bs []runtime.Binding
	if s.app.Bind != nil {
		var err error
		if bs, err = s.app.Bind(s.ctx); err != nil {
			bs = nil // placeholders then
		}
	}
	s.describeCommands(c.Root(), s.pipelineFacts(choosePipeline(bs, s.pipeline)))
	if len(bs) > 0 {
		hideUnused(c.Root(), bs)
	}
}

// choosePipeline picks the pipeline help speaks of: the one named, else
// the first; several reports whether examples need --pipeline.
func choosePipeline(bs []runtime.Binding, name string) (p *runtime.Pipeline, several bool) {
	n := 0
	for _, b := range bs {
		bp := b.Pipeline()
		if bp == nil {
			continue
		}
		n++
		if p == nil || bp.Name() == name {
			p = bp
		}
	}
	return p, n > 1 && (p == nil || p.Name() != name)
}

// hideUnused hides from the command list the commands of features no
// bound pipeline uses (gates, dynamic sets, sensors, partitions); they
// still run.
func hideUnused(root *cobra.Command, bs []runtime.Binding) {
	var gates, dynamic, sensors, partitioned bool
	var about []string
	for _, b := range bs {
		p := b.Pipeline()
		if p == nil {
			continue
		}
		about = append(about, describePipeline(p))
		sensors = sensors || len(p.Sensors()) > 0
		for _, a := range p.Assets() {
			gates = gates || a.Kind == "gate"
			partitioned = partitioned || a.Partitions != nil
			if _, ok := a.Partitions.(*flowstone.DynamicSet); ok {
				dynamic = true
			}
		}
	}
	uses := map[string]bool{
		"gates": gates, "approve": gates, "reject": gates, "gate-link": gates, "serve-gates": gates,
		"dynamic": dynamic, "sensors": sensors, "backfill": partitioned, "partitions": partitioned,
	}
	for _, c := range root.Commands() {
		if used, ok := uses[c.Name()]; ok && !used {
			c.Hidden = true
		}
	}
	f := root.PersistentFlags()
	f.Lookup("secret").Hidden = !gates
	f.Lookup("pipeline").Hidden = len(about) < 2
	root.Long = root.Short + "\n\n" + strings.Join(about, "\n")
}

// describePipeline says in a line what a pipeline holds, for the
// program's help: "Pipeline orders: raw_orders, clean_orders (daily
// partitions; config orders.Settings)."
func describePipeline(p *runtime.Pipeline) string {
	var keys, sets []string
	for _, a := range p.Assets() {
		keys = append(keys, a.Key)
		if a.Partitions != nil && !slices.Contains(sets, a.Partitions.Kind()) {
			sets = append(sets, a.Partitions.Kind())
		}
	}
	var notes []string
	if len(sets) > 0 {
		notes = append(notes, strings.Join(sets, " and ")+" partitions")
	}
	if p.Config() != nil {
		notes = append(notes, "config "+p.Config().TypeName())
	}
	line := "Pipeline " + p.Name() + ": " + strings.Join(keys, ", ")
	if len(notes) > 0 {
		line += " (" + strings.Join(notes, "; ") + ")"
	}
	return line + "."
}

// describeCommands sets the examples and flag hints of every command in
// the tree from f.
func (s *session) describeCommands(root *cobra.Command, f facts) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.CommandPath()), " ")
		if ex := examples(path, f); ex != "" {
			c.Example = ex
		}
		for name, key := range map[string]string{"partition": f.partition, "from": f.from, "to": f.to} {
			if fl := c.Flags().Lookup(name); fl != nil && key != "" && !strings.Contains(fl.Usage, "e.g.") {
				fl.Usage += ", e.g. " + key
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}
