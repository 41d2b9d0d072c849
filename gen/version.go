package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"go/ast"
	"go/format"
	"go/token"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// codeVersions sets every asset's codeVersion. Printing each function
// again is most of the analysis's cost, and the assets are independent, so
// they are hashed in parallel; each worker writes only its own assets.
func codeVersions(fset *token.FileSet, assets []*asset) {
	const perWorker = 64 // below this, a goroutine costs more than it saves
	workers := min(runtime.GOMAXPROCS(0), (len(assets)+perWorker-1)/perWorker)
	if workers <= 1 {
		for _, a := range assets {
			a.codeVersion = codeVersion(fset, a)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(assets); i = int(next.Add(1) - 1) {
				assets[i].codeVersion = codeVersion(fset, assets[i])
			}
		})
	}
	wg.Wait()
}

// codeVersion hashes the asset function's own source, gofmt-normalised and
// without comments, together with its directive's options. Editing anything
// else in the file (other functions, comments, blank lines, the function's
// position) leaves it unchanged.
func codeVersion(fset *token.FileSet, a *asset) string {
	if pinned, ok := a.opt("code_version").(string); ok {
		return pinned
	}
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
