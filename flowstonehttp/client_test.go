package flowstonehttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
)

// recorder stands in for the engine: an identity and a metadata map.
type recorder struct {
	id   flowstone.Identity
	mu   sync.Mutex
	meta map[string]any
}

func (r *recorder) AddMetadata(k string, v any)  { r.UpdateMetadata(k, func(any) any { return v }) }
func (r *recorder) Logger() *slog.Logger         { return slog.New(slog.DiscardHandler) }
func (r *recorder) Identity() flowstone.Identity { return r.id }
func (r *recorder) UpdateMetadata(k string, f func(any) any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.meta[k] = f(r.meta[k])
}

func (r *recorder) summary(t *testing.T) Summary {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.Marshal(r.meta[MetadataKey])
	if err != nil {
		t.Fatal(err)
	}
	var s Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func assetCtx(t *testing.T, attempt int) (context.Context, *recorder) {
	r := &recorder{id: flowstone.Identity{Pipeline: "shop", RunID: "run_1", Asset: "charges", Partition: "2024-01-02", Attempt: attempt}, meta: map[string]any{}}
	return flowstone.WithRecorder(t.Context(), r), r
}

// client returns a Client whose waits are recorded instead of slept.
func client(opt Options) (*Client, *[]time.Duration) {
	c := New(opt)
	var mu sync.Mutex
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		return ctx.Err()
	}
	return c, &waits
}

// script serves the given statuses in order (then 200), recording what
// each request carried.
type script struct {
	mu       sync.Mutex
	statuses []int
	headers  []http.Header
	bodies   []string
	before   func(w http.ResponseWriter, n int)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.headers)
	s.headers = append(s.headers, r.Header.Clone())
	s.bodies = append(s.bodies, string(body))
	status := http.StatusOK
	if n < len(s.statuses) {
		status = s.statuses[n]
	}
	s.mu.Unlock()
	if s.before != nil {
		s.before(w, n)
	}
	w.WriteHeader(status)
	io.WriteString(w, "attempt "+http.StatusText(status))
}

func serve(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRetryAfterSecondsThenSuccess(t *testing.T) {
	t.Parallel()
	s := &script{statuses: []int{429}, before: func(w http.ResponseWriter, n int) {
		if n == 0 {
			w.Header().Set("Retry-After", "7")
		}
	}}
	url := serve(t, s)
	c, waits := client(Options{})
	ctx, rec := assetCtx(t, 1)
	resp, err := c.Get(ctx, url+"/rates?api_key=secret")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "attempt OK" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if !slices.Equal(*waits, []time.Duration{7 * time.Second}) {
		t.Fatalf("waited %v, want the 7s the server asked for", *waits)
	}
	sum := rec.summary(t)
	if sum.Requests != 2 || sum.Status["429"] != 1 || sum.Status["200"] != 1 || sum.BytesReceived != int64(len("attempt Too Many Requests")+len(body)) || sum.Last == nil || sum.Last.Attempt != 2 {
		t.Fatalf("summary %+v", sum)
	}
	if strings.Contains(sum.Last.URL, "secret") {
		t.Fatalf("metadata shows the query: %s", sum.Last.URL)
	}
	if s.headers[0].Get(IdempotencyHeader) != "" {
		t.Fatal("a GET got an idempotency key")
	}
}

func TestRetryAfterDate(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 2, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"120":                           2 * time.Minute,
		"0":                             0,
		"Tue, 02 Jan 2024 10:01:30 GMT": 90 * time.Second,
		"Tue, 02 Jan 2024 09:00:00 GMT": 0, // in the past: retry now
	} {
		if got, ok := retryAfter(in, now); !ok || got != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(bad, now); ok {
			t.Errorf("retryAfter(%q) accepted", bad)
		}
	}
	// Through a server: an HTTP-date a minute ahead.
	s := &script{statuses: []int{503}, before: func(w http.ResponseWriter, n int) {
		if n == 0 {
			w.Header().Set("Retry-After", time.Now().Add(time.Minute).UTC().Format(http.TimeFormat))
		}
	}}
	c, waits := client(Options{})
	resp, err := c.Get(t.Context(), serve(t, s))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if len(*waits) != 1 || (*waits)[0] < 55*time.Second || (*waits)[0] > time.Minute {
		t.Fatalf("waited %v, want about a minute", *waits)
	}
}

func TestPostKeepsItsKeyAndBodyAcrossRetries(t *testing.T) {
	t.Parallel()
	s := &script{statuses: []int{503, 502}}
	url := serve(t, s)
	c, waits := client(Options{Backoff: time.Second, MaxBackoff: 3 * time.Second})
	ctx, _ := assetCtx(t, 1)
	resp, err := c.Post(ctx, url+"/charges", "application/json", []byte(`{"amount":42}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if len(s.bodies) != 3 {
		t.Fatalf("%d attempts, want 3", len(s.bodies))
	}
	key := s.headers[0].Get(IdempotencyHeader)
	for i := range 3 {
		if s.bodies[i] != `{"amount":42}` || s.headers[i].Get(IdempotencyHeader) != key {
			t.Fatalf("attempt %d sent %q with key %q, want the body and key %q", i, s.bodies[i], s.headers[i].Get(IdempotencyHeader), key)
		}
	}
	// Backoff with full jitter: the n-th wait is at most Backoff·2ⁿ.
	for i, w := range *waits {
		if w < 0 || w > time.Second<<i {
			t.Fatalf("wait %d = %v", i, w)
		}
	}
	// The asset's next attempt (the engine retrying it) sends the same key;
	// another partition, or another body, a different one.
	keyOf := func(ctx context.Context, body string) string {
		t.Helper()
		resp, err := c.Post(ctx, url+"/charges", "application/json", []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return s.headers[len(s.headers)-1].Get(IdempotencyHeader)
	}
	again, _ := assetCtx(t, 2)
	if keyOf(again, `{"amount":42}`) != key {
		t.Fatal("the key changed between attempts of the asset")
	}
	if keyOf(ctx, `{"amount":43}`) == key {
		t.Fatal("two different requests share a key")
	}
	other, r := assetCtx(t, 1)
	r.id.Partition = "2024-01-03"
	if keyOf(other, `{"amount":42}`) == key {
		t.Fatal("two partitions share a key")
	}
	// A key the caller set is kept.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("x"))
	req.Header.Set(IdempotencyHeader, "mine")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := s.headers[len(s.headers)-1].Get(IdempotencyHeader); got != "mine" {
		t.Fatalf("key %q, want the caller's", got)
	}
}

func TestGivesUpAndReturnsTheLastResponse(t *testing.T) {
	t.Parallel()
	s := &script{statuses: []int{503, 503, 503}}
	c, _ := client(Options{Retries: 2})
	resp, err := c.Get(t.Context(), serve(t, s))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || len(s.headers) != 3 {
		t.Fatalf("status %d after %d attempts", resp.StatusCode, len(s.headers))
	}
	// A client error is not retried.
	s2 := &script{statuses: []int{404}}
	resp, err = c.Get(t.Context(), serve(t, s2))
	if err != nil || resp.StatusCode != 404 || len(s2.headers) != 1 {
		t.Fatalf("404: %v %v after %d attempts", resp, err, len(s2.headers))
	}
	resp.Body.Close()
	// A Retry-After beyond the cap ends the call.
	s3 := &script{statuses: []int{429}, before: func(w http.ResponseWriter, n int) { w.Header().Set("Retry-After", "3600") }}
	c3, _ := client(Options{MaxRetryAfter: time.Minute})
	if _, err := c3.Get(t.Context(), serve(t, s3)); !errors.Is(err, ErrRetryAfterTooLong) {
		t.Fatalf("an hour's Retry-After: %v", err)
	}
}

func TestNetworkErrorsAreRetried(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	n := 0
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close() // the connection drops without a response
			return
		}
		io.WriteString(w, "ok")
	}))
	c, _ := client(Options{})
	ctx, rec := assetCtx(t, 1)
	resp, err := c.Get(ctx, url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if sum := rec.summary(t); sum.Requests != 2 || sum.Errors != 1 {
		t.Fatalf("summary %+v", sum)
	}
}

func TestMultiValueHeadersSurvive(t *testing.T) {
	t.Parallel()
	var got http.Header
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.Header().Add("X-Rate", "one")
		w.Header().Add("x-rate", "two")
	}))
	c, _ := client(Options{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.Header.Add("Accept", "application/json")
	req.Header.Add("Accept", "text/csv")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := got.Values("Accept"); !slices.Equal(v, []string{"application/json", "text/csv"}) {
		t.Errorf("server saw Accept %q", v)
	}
	if v := resp.Header.Values("Set-Cookie"); !slices.Equal(v, []string{"a=1", "b=2"}) {
		t.Errorf("Set-Cookie %q", v)
	}
	if v := resp.Header.Values("X-Rate"); !slices.Equal(v, []string{"one", "two"}) {
		t.Errorf("X-Rate %q", v)
	}
}

func TestSlowBodyAndCancellation(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	url := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first half ")
		w.(http.Flusher).Flush()
		select { // the rest never comes while the test runs
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// The attempt timeout covers reading the body.
	c, _ := client(Options{AttemptTimeout: 50 * time.Millisecond})
	resp, err := c.Get(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reading a stalled body: %v, want the attempt's deadline", err)
	}
	// Cancelling the caller's context ends a call waiting to retry.
	s := &script{statuses: []int{503}, before: func(w http.ResponseWriter, n int) { w.Header().Set("Retry-After", "30") }}
	c2 := New(Options{})
	ctx, cancel := context.WithCancel(t.Context())
	c2.sleep = func(ctx context.Context, d time.Duration) error {
		cancel()
		return sleep(ctx, d)
	}
	if _, err := c2.Get(ctx, serve(t, s)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: %v", err)
	}
}

func TestPerHostRateLimit(t *testing.T) {
	t.Parallel()
	a, b := serve(t, &script{}), serve(t, &script{})
	c, waits := client(Options{PerHost: 10, Burst: 2})
	for _, u := range []string{a, a, a, a, b} {
		resp, err := c.Get(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	// Two requests fit the burst; the third and fourth wait about 0.1s and
	// 0.2s (the fake sleep does not advance the clock); the other host
	// does not wait.
	if len(*waits) != 2 || (*waits)[0] <= 0 || (*waits)[1] <= (*waits)[0] || (*waits)[1] > 250*time.Millisecond {
		t.Fatalf("waits %v", *waits)
	}
}
