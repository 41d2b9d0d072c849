//go:build !unix

package runtime

// lockFile is a no-op where flock is missing: processes there must not
// migrate one SQLite file at the same moment.
func lockFile(string) (func(), error) { return func() {}, nil }
