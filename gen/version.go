package gen

import (
	"path/filepath"

	"github.com/flowstone-go/flowstone/internal/codeversion"
)

// codeVersions sets every asset's source hash and code version. The hash
// comes from internal/codeversion, the code the runtime runs at Open over
// the embedded files: the two agree by construction. code_version= pins
// the version; the hash is still recorded, so a stale file is caught.
func codeVersions(p *pipelineDecl) {
	byFile := map[string]map[string]string{}
	for _, a := range p.assets {
		name := p.pkg.Fset.Position(a.fn.Pos()).Filename
		versions, ok := byFile[name]
		if !ok {
			versions = codeversion.Funcs(p.pkg.Sources[name])
			byFile[name] = versions
		}
		a.srcFile = filepath.Base(name)
		a.srcHash = versions[a.fn.Name.Name]
		a.codeVersion = a.srcHash
		if pinned, ok := a.opt("code_version").(string); ok {
			a.codeVersion = pinned
		}
	}
}
