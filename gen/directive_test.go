package gen

import (
	"strings"
	"testing"
)

// The Lookalikes golden case holds these as gofmt writes them ("// flowstone:
// asset"); a file nobody formatted still has the raw forms, which must be
// reported the same way.
func TestRawLookalikesAreMalformed(t *testing.T) {
	t.Parallel()
	for _, text := range []string{"//flowstone: asset", "//FlowStone:asset", "// flowstone:asset retries=3"} {
		d, errs := scanComment(text)
		if d != nil || len(errs) != 1 || errs[0].off != 0 ||
			!strings.Contains(errs[0].msg, `malformed directive "`+text+`": write //flowstone:asset`) {
			t.Errorf("%q: directive %v, errors %+v", text, d, errs)
		}
	}
}
