package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/format"
	"go/token"
	"slices"
	"strconv"
	"strings"
)

// codeVersion hashes the asset function's own source, gofmt-normalised and
// without comments, together with its directive's options. Editing anything
// else in the file (other functions, comments, blank lines, the function's
// position) leaves it unchanged.
func codeVersion(fset *token.FileSet, a *asset) string {
	h := sha256.New()
	h.Write(funcSource(fset, a.fn))
	h.Write([]byte("\n//flowstone:asset " + normaliseOptions(a.dir.opts)))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// funcSource prints fn without its doc comment or any comment inside it;
// blank lines are dropped so that a removed comment line does not count.
func funcSource(fset *token.FileSet, fn *ast.FuncDecl) []byte {
	bare := *fn
	bare.Doc = nil
	var buf bytes.Buffer
	if err := format.Node(&buf, fset, &bare); err != nil {
		// format.Node fails only on ASTs the parser would not produce; fall
		// back to the name so the version stays deterministic.
		return []byte(fn.Name.Name)
	}
	var out bytes.Buffer
	for line := range bytes.Lines(buf.Bytes()) {
		if len(bytes.TrimSpace(line)) > 0 {
			out.Write(bytes.TrimRight(line, " \t\n"))
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// normaliseOptions prints options sorted by name, each as name or
// name=value, values quoted only when they need it.
func normaliseOptions(opts []rawOption) string {
	parts := make([]string, 0, len(opts))
	for _, o := range opts {
		if !o.hasValue {
			parts = append(parts, o.name)
			continue
		}
		v := o.value
		if v == "" || strings.ContainsAny(v, " \t\"\\") || !strconv.CanBackquote(v) {
			v = strconv.Quote(v)
		}
		parts = append(parts, o.name+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}
