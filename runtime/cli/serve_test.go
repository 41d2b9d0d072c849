package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone/runtime/cli"
)

// lockedBuffer is a writer the test reads while the command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServe serves the page on a free port, reads its graph and River's
// view, and stops on interrupt (the context ending).
func TestServe(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, db []string) {
		app := ordersApp()
		if r := invoke(t.Context(), app, append(db, "materialize", "--partition", "2024-01-02", "--config", `{"currency":"EUR"}`)...); r.code != cli.ExitOK {
			t.Fatalf("materialize: %s", r)
		}
		ctx, stop := context.WithTimeout(t.Context(), 2*time.Minute)
		defer stop()
		var out, errOut lockedBuffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Main(ctx, app, append(db, "serve", "--addr", "127.0.0.1:0", "--user", "ana:pw"), &out, &errOut)
		}()
		addr := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/)`)
		var base string
		for base == "" {
			select {
			case code := <-done:
				t.Fatalf("serve exited %d: %s %s", code, out.String(), errOut.String())
			case <-time.After(20 * time.Millisecond):
			}
			if m := addr.FindStringSubmatch(out.String()); m != nil {
				base = m[1]
			}
		}
		if strings.Contains(out.String(), "read-only") {
			t.Errorf("serve with a user says it is read-only: %s", out.String())
		}
		var graph []struct {
			Name   string
			Assets []struct{ Key, Status string }
		}
		get := func(path string) []byte {
			res, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %s %s", path, res.Status, body)
			}
			return body
		}
		if err := json.Unmarshal(get("api/graph"), &graph); err != nil || len(graph) != 1 || graph[0].Name != "orders" {
			t.Fatalf("graph = %+v (%v), want the orders pipeline", graph, err)
		}
		for _, a := range graph[0].Assets {
			if a.Status != "succeeded" {
				t.Errorf("asset %s shows %q, want succeeded", a.Key, a.Status)
			}
		}
		if page := string(get("")); !strings.Contains(page, "app.js") {
			t.Errorf("the page: %s", page)
		}
		if river := string(get("river/")); !strings.Contains(strings.ToLower(river), "river") {
			t.Errorf("River's view: %.200s", river)
		}
		stop()
		if code := <-done; code != cli.ExitOK || !strings.Contains(out.String(), "stopped serving") {
			t.Errorf("serve stopped with %d: %s %s", code, out.String(), errOut.String())
		}
	})
}
