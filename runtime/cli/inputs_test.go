package cli_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowstone-go/flowstone/runtime/cli"
)

// TestInvalidKeysExitTwo: keys no database can hold are refused by the
// engine's one rule, with exit status 2, before anything is recorded.
// PostgreSQL used to answer a raw database error (exit 1), SQLite to
// accept them.
func TestInvalidKeysExitTwo(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(0))
		if r := invoke(ctx, app, args(db, "dynamic", "add", "customers", "acme")...); r.code != 0 {
			t.Fatal(r)
		}
		long := strings.Repeat("k", 10<<10)
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"dynamic add NUL", []string{"dynamic", "add", "customers", "a\x00b"}, `invalid key: partition key "a\x00b": control character U+0000 at byte 1`},
			{"dynamic add invalid UTF-8", []string{"dynamic", "add", "customers", "a\xffb"}, `invalid key: partition key "a\xffb": not valid UTF-8 at byte 1`},
			{"dynamic add 10 KB", []string{"dynamic", "add", "customers", long}, `... (10240 bytes): 10240 bytes; keys are at most 256 bytes`},
			{"dynamic remove NUL", []string{"dynamic", "remove", "customers", "a\x00b"}, `control character U+0000`},
			{"materialize dynamic NUL", []string{"materialize", "per_customer", "-p", "acme\x00"}, `control character U+0000`},
			{"materialize dynamic invalid UTF-8", []string{"materialize", "per_customer", "-p", "acme\xff"}, `not valid UTF-8`},
			{"materialize daily 10 KB", []string{"materialize", "raw", "-p", long}, `keys are at most 256 bytes`},
			{"run key", []string{"materialize", "per_customer", "-p", "acme", "--run-key", "k\x00"}, `invalid key: run key "k\x00"`},
			{"backfill range", []string{"backfill", "raw", "--from", "2024-01-01", "--to", "2024-01-0\xff"}, `not valid UTF-8`},
			{"status run ID", []string{"status", "run_\x00"}, `invalid key: run ID`},
			{"cancel run ID", []string{"cancel", long}, `invalid key: run ID`},
		} {
			r := invoke(ctx, app, args(db, tc.args...)...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) || len(r.stderr) > 1000 {
				t.Errorf("%s: want exit 2 and %q\n%s", tc.name, tc.want, r)
			}
		}
		r := invoke(ctx, app, args(db, "dynamic", "list", "customers")...)
		if r.stdout != "acme\n" {
			t.Errorf("customers after refused keys:\n%s", r)
		}
		if r := invoke(ctx, app, args(db, "status")...); strings.Contains(r.stdout, "run_") {
			t.Errorf("a refused key started a run:\n%s", r)
		}
	})
}

// TestRunKeyDeduplicates: a second materialize with the key says the run
// was not started again, and shows the stored run, not its own request.
func TestRunKeyDeduplicates(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		ctx := testContext(t)
		app := daysApp(noSensors(0))
		r := invoke(ctx, app, args(db, "materialize", "raw", "-p", "2024-01-02", "--run-key", "nightly")...)
		if r.code != 0 {
			t.Fatal(r)
		}
		id := runID(t, r)
		r = invoke(ctx, app, args(db, "materialize", "total", "-p", "2024-01-03", "--run-key", "nightly")...)
		if r.code != 0 {
			t.Fatal(r)
		}
		want := "run " + id + ` already requested with run key "nightly": not started again (pipeline days, partition 2024-01-02, 1 assets)`
		if !strings.Contains(r.stdout, want) {
			t.Errorf("want %q\n%s", want, r)
		}
	})
}

// TestSecretsAreRedacted: a database password, in the URL's userinfo or
// its query, never reaches the output.
func TestSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: opening fails with the URL in hand.
	url := "postgres://u:secret@127.0.0.1:1/db?connect_timeout=2&password=hunter22"
	for _, cmd := range [][]string{{"migrate"}, {"status"}, {"worker"}} {
		r := invoke(testContext(t), ordersApp(), append([]string{"--database", url}, cmd...)...)
		if r.code == 0 || strings.Contains(r.stdout+r.stderr, "secret") || strings.Contains(r.stdout+r.stderr, "hunter22") {
			t.Errorf("%v: a password shows\n%s", cmd, r)
		}
		if !strings.Contains(r.stderr, "postgres://u:xxxxx@127.0.0.1:1/db?connect_timeout=2&password=xxxxx") {
			t.Errorf("%v: want the database named, redacted\n%s", cmd, r)
		}
	}
	r := invoke(testContext(t), ordersApp(), "--database", "mysql://u:secret@h/db?password=hunter22", "status")
	if r.code == 0 || strings.Contains(r.stderr, "secret") || strings.Contains(r.stderr, "hunter22") {
		t.Errorf("an unsupported URL: a password shows\n%s", r)
	}
}

// TestConfigFileIsNeverEchoed: --config @FILE says where the file is not
// JSON, never what it holds.
func TestConfigFileIsNeverEchoed(t *testing.T) {
	t.Parallel()
	db := databases(t)[0].flags(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, content, want string
	}{
		{"shadow", "hunter22:$6$salt$hash\n", `is not valid JSON: at byte 1: invalid character looking for beginning of value`},
		{"key.json", `{"currency":"EUR","hunter22":"x"}`, `bad run config: decoding orders.Settings: json: unknown field`},
		{"half.json", `{"currency":"hunter22`, `is not valid JSON: at byte 21: unexpected end of the file`},
		{"big.json", `{"currency":"` + strings.Repeat("x", 2<<20) + `"}`, `more than 1048576 bytes; a run's config is at most 1048576 bytes (--max-config-bytes)`},
	} {
		path := write(tc.name, tc.content)
		r := invoke(testContext(t), ordersApp(), args(db, "materialize", "-p", "2024-01-02", "--config", "@"+path)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) || regexp.MustCompile(`hunter22|\$6\$|'h'|xxxx`).MatchString(r.stderr) {
			t.Errorf("%s: want exit 2 and %q, no content\n%s", tc.name, tc.want, r)
		}
	}
	// The limit is the command line's to raise.
	path := write("roomy.json", `{"currency":"`+strings.Repeat("x", 2<<20)+`"}`)
	r := invoke(testContext(t), ordersApp(), args(db, "--max-config-bytes", "4000000", "materialize", "-p", "2024-01-02", "--detach", "--config", "@"+path)...)
	if r.code != 0 {
		t.Errorf("--max-config-bytes 4000000: exit %d: %.300s", r.code, r.stderr)
	}
}
