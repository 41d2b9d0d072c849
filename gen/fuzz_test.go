package gen

import (
	"strings"
	"testing"
)

// FuzzParseDirective feeds arbitrary comment text to the directive scanner:
// it must never panic, and it answers with a directive, with errors whose
// offsets fall inside the text, or (for an ordinary comment) with neither.
func FuzzParseDirective(f *testing.F) {
	for _, seed := range []string{
		"//flowstone:asset",
		"//flowstone:asset partitions=Days retries=3 timeout=5m",
		`//flowstone:asset schedule="0 6 * * *" name=x`,
		`//flowstone:asset queue="a\"b" tags=a,b router`,
		"//flowstone:asset router=yes Retries=3 queue=",
		`//flowstone:asset schedule="abc`,
		"//flowstone:config",
		"//flowstone:pipeline name=orders",
		"//flowstone:sensor every=30s targets=a,b name=new_orders",
		`//flowstone:sensor every targets="a,,b"`,
		"// flowstone:sensor",
		"//flowstone:sensors",
		"// flowstone:asset",
		"//flowstone: asset",
		"//flowstone:assets",
		"//FlowStone:asset",
		"/* flowstone:asset\n flowstone:config */",
		"//flowstone:asset,x",
		"// an ordinary comment",
		"//flowstone:\t",
	} {
		f.Add(seed)
	}
	table, err := newOptionTable()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		d, errs := scanComment(text)
		for _, e := range errs {
			if e.off < 0 || e.off > len(text) {
				t.Fatalf("error offset %d outside the text (len %d): %s", e.off, len(text), e.msg)
			}
			if e.msg == "" {
				t.Fatal("empty error message")
			}
		}
		if d != nil && len(errs) > 0 {
			t.Fatal("both a directive and errors")
		}
		if d == nil && len(errs) == 0 && strings.HasPrefix(text, directivePrefix) {
			t.Fatal("a //flowstone: line produced neither a directive nor an error")
		}
		if d == nil {
			return
		}
		for _, o := range d.opts {
			if o.off < len(directivePrefix) || o.off >= len(text) {
				t.Fatalf("option %s at offset %d outside the text", o.name, o.off)
			}
			if !validKey(o.name) {
				t.Fatalf("option name %q accepted", o.name)
			}
			// Checking values against the option tables never panics either.
			if e, ok := table.byName[o.name]; ok && o.hasValue {
				parseValue(e.Option, o.value)
			}
		}
	})
}
