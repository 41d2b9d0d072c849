// Package flowstonehttp is a thin layer over net/http for assets that call
// APIs. A Client retries 429, 5xx and network errors with backoff and
// jitter, honours Retry-After, adds an Idempotency-Key to POST and PATCH
// requests that stays the same across the asset's retries, limits the
// request rate per host, and records what it did on the materialization
// (flowstone.UpdateMetadata). Requests and responses are plain
// *http.Request and *http.Response: headers are passed through as they are,
// so multi-value headers survive.
//
// A Client is safe for concurrent use; make one per process and pass it to
// assets as a resource.
package flowstonehttp

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
)

// MetadataKey is the materialization metadata key under which a Client
// records its Summary.
const MetadataKey = "http"

// IdempotencyHeader is the header a Client sets on non-idempotent requests.
const IdempotencyHeader = "Idempotency-Key"

// ErrRetryAfterTooLong is returned (wrapped) when a server asks to wait
// longer than Options.MaxRetryAfter, or than the context allows.
var ErrRetryAfterTooLong = errors.New("flowstonehttp: server asks to retry later than allowed")

// Options configures a Client. The zero value is usable.
type Options struct {
	// HTTP sends the requests; nil means a client with no overall timeout
	// (the context bounds each call).
	HTTP *http.Client
	// Retries after the first attempt; 0 means 3, negative means none.
	Retries int
	// Backoff is the base delay: attempt n waits a random duration up to
	// Backoff·2ⁿ ("full jitter"), at most MaxBackoff. Defaults 200ms, 30s.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter caps the Retry-After the client waits for; a longer
	// one ends the call with ErrRetryAfterTooLong. Default 5m.
	MaxRetryAfter time.Duration
	// AttemptTimeout bounds one attempt, reading the body included; 0
	// means only the context bounds it.
	AttemptTimeout time.Duration
	// PerHost limits requests per second to each host (0: no limit), with
	// bursts of up to Burst requests (default 1).
	PerHost float64
	Burst   int
}

// Client sends requests with retries, idempotency keys, a per-host rate
// limit and metadata.
type Client struct {
	opt Options
	// sleep waits d or until ctx ends; tests replace it to see the delays.
	sleep func(ctx context.Context, d time.Duration) error

	mu    sync.Mutex
	hosts map[string]*bucket
}

// New returns a Client.
func New(opt Options) *Client {
	if opt.HTTP == nil {
		opt.HTTP = &http.Client{}
	}
	if opt.Retries == 0 {
		opt.Retries = 3
	}
	opt.Retries = max(opt.Retries, 0)
	if opt.Backoff <= 0 {
		opt.Backoff = 200 * time.Millisecond
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = 30 * time.Second
	}
	if opt.MaxRetryAfter <= 0 {
		opt.MaxRetryAfter = 5 * time.Minute
	}
	opt.Burst = max(opt.Burst, 1)
	return &Client{opt: opt, sleep: sleep, hosts: map[string]*bucket{}}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// Get sends a GET request.
func (c *Client) Get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	return c.Do(req)
}

// Post sends a POST request with body, which is resent on retries under
// the same idempotency key.
func (c *Client) Post(ctx context.Context, url, contentType string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	return c.Do(req)
}

// Do sends req, retrying as Options say, and returns the final response:
// a success, a status that is not retried (4xx but 429), or the last
// retried one when retries run out (its body unread). err is non-nil only
// when no response came back, the context ended, or a Retry-After was too
// long. A request with a body is retried only when req.GetBody can resend
// it (http.NewRequest sets it for in-memory bodies).
//
// POST and PATCH requests get an Idempotency-Key header unless they have
// one, derived with IdempotencyKey from the method, the URL and the body:
// the same on every attempt of the asset in its run when the asset sends
// the same request, different for different requests.
func (c *Client) Do(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if needsKey(req.Method) && req.Header.Get(IdempotencyHeader) == "" {
		key, err := requestKey(ctx, req)
		if err != nil {
			return nil, err
		}
		req = req.Clone(ctx)
		req.Header.Set(IdempotencyHeader, key)
	}
	retries := c.opt.Retries
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		retries = 0
	}
	for attempt := 0; ; attempt++ {
		try := req
		if attempt > 0 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			try = req.Clone(ctx)
			try.Body = body
		}
		if err := c.wait(ctx, req.URL.Host); err != nil {
			return nil, err
		}
		resp, err := c.once(ctx, try, attempt)
		if attempt >= retries || ctx.Err() != nil || !retryable(resp, err) {
			return resp, err
		}
		delay := c.backoff(attempt)
		if resp != nil {
			if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				delay = d
			}
			drain(resp)
		}
		if delay > c.opt.MaxRetryAfter {
			return nil, fmt.Errorf("%w: %s %s: %v (max %v)", ErrRetryAfterTooLong, req.Method, redactURL(req), delay, c.opt.MaxRetryAfter)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return nil, fmt.Errorf("%w: %s %s: %v, past the context's deadline", ErrRetryAfterTooLong, req.Method, redactURL(req), delay)
		}
		if err := c.sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// once sends one attempt and records it.
func (c *Client) once(ctx context.Context, req *http.Request, attempt int) (*http.Response, error) {
	cancel := context.CancelFunc(func() {})
	if c.opt.AttemptTimeout > 0 {
		var actx context.Context
		actx, cancel = context.WithTimeout(ctx, c.opt.AttemptTimeout)
		req = req.WithContext(actx)
	}
	start := time.Now()
	resp, err := c.opt.HTTP.Do(req)
	latency := time.Since(start)
	call := Call{Method: req.Method, URL: redactURL(req), Attempt: attempt + 1, LatencyMS: float64(latency.Microseconds()) / 1000, BytesSent: max(req.ContentLength, 0)}
	if err != nil {
		cancel()
		call.Error = err.Error()
		record(ctx, call, 0)
		return nil, err
	}
	call.Status = resp.StatusCode
	record(ctx, call, 0)
	resp.Body = &countingBody{ReadCloser: resp.Body, ctx: ctx, cancel: cancel}
	return resp, nil
}

func needsKey(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch
}

func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return true // a network error; the context's end was checked first
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented
}

// backoff is full jitter: uniform in [0, min(MaxBackoff, Backoff·2^attempt)].
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.opt.MaxBackoff
	if attempt < 30 {
		ceil = min(ceil, c.opt.Backoff<<attempt)
	}
	return rand.N(ceil + 1)
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<32)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// drain reads a little of a response that is about to be retried, so the
// connection can be reused, and closes it.
func drain(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}

// requestKey is the default idempotency key of req: the method, the URL
// and a hash of the body, so that an asset posting several things to one
// endpoint gives each its own key while its retries repeat them. A body
// that cannot be read twice (no GetBody) gets a random key: it is not
// retried, and nothing says a later attempt sends the same.
func requestKey(ctx context.Context, req *http.Request) (string, error) {
	h := sha256.New()
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return crand.Text(), nil
		}
		body, err := req.GetBody()
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, body)
		body.Close()
		if err != nil {
			return "", err
		}
	}
	return IdempotencyKey(ctx, req.Method+" "+req.URL.String()+" "+hex.EncodeToString(h.Sum(nil))), nil
}

// IdempotencyKey derives the Idempotency-Key for key (any string that names
// the operation, stable across attempts: "charge "+orderID) from the
// pipeline, run, asset and partition ctx belongs to, so that a retried
// asset repeats the same keys and the API does each operation once. Outside
// a materialization it returns a random key.
func IdempotencyKey(ctx context.Context, key string) string {
	id, ok := flowstone.IdentityOf(ctx)
	if !ok {
		return crand.Text()
	}
	h := sha256.New()
	for _, s := range []string{id.Pipeline, id.RunID, id.Asset, string(id.Partition), key} {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// redactURL is the request's URL without user info or query, for metadata
// and errors: query strings often carry API keys.
func redactURL(req *http.Request) string {
	u := *req.URL
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	return u.String()
}
