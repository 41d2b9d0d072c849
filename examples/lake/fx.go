package lake

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone/flowstonehttp"
)

// FX is the resource through which assets call the FX API.
type FX struct {
	Client   *flowstonehttp.Client
	BaseURL  string
	Currency string
}

// NewFX returns an FX for the API at baseURL with the client settings an
// API with a rate limit wants: retries with backoff, at most 20 requests a
// second.
func NewFX(baseURL, currency string) *FX {
	return &FX{
		Client:   flowstonehttp.New(flowstonehttp.Options{Retries: 4, PerHost: 20, Burst: 5, AttemptTimeout: 30 * time.Second}),
		BaseURL:  baseURL,
		Currency: currency,
	}
}

// FakeAPI is an in-process stand-in for the FX and reporting API, for the
// tests and for go run: GET /rates/{day}?to=EUR answers a deterministic
// rate, after a 429 with Retry-After on each day's first request (as a
// rate-limited API would); POST /reports records a report once per
// Idempotency-Key.
type FakeAPI struct {
	// FailPosts makes the API record the report of each of the first
	// FailPosts POSTs and then answer 504 Gateway Timeout, as a proxy does
	// when the server acted too slowly: retries must not publish twice.
	FailPosts int

	mu      sync.Mutex
	limited map[string]bool
	reports map[string]string // idempotency key → report id
	posts   int
}

// NewFakeAPI returns an empty FakeAPI.
func NewFakeAPI() *FakeAPI {
	return &FakeAPI{limited: map[string]bool{}, reports: map[string]string{}}
}

// Reports returns how many distinct reports were recorded and how many
// POSTs arrived.
func (f *FakeAPI) Reports() (distinct, posts int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reports), f.posts
}

// ServeHTTP implements http.Handler.
func (f *FakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && len(r.URL.Path) > len("/rates/"):
		day := r.URL.Path[len("/rates/"):]
		if !f.limited[day] {
			f.limited[day] = true
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		h := fnv.New32a()
		h.Write([]byte(day))
		to := r.URL.Query().Get("to")
		if to == "" {
			to = "EUR"
		}
		json.NewEncoder(w).Encode(Rate{Currency: to, PerUSD: 0.85 + float64(h.Sum32()%100)/1000})
	case r.Method == http.MethodPost && r.URL.Path == "/reports":
		f.posts++
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			http.Error(w, "Idempotency-Key required", http.StatusBadRequest)
			return
		}
		var body struct {
			Totals []DriverTotal `json:"totals"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, seen := f.reports[key]
		if !seen {
			id = fmt.Sprintf("rep_%d", len(f.reports)+1)
			f.reports[key] = id
		}
		if f.posts <= f.FailPosts {
			http.Error(w, "upstream timed out", http.StatusGatewayTimeout)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(Receipt{ID: id, Drivers: len(body.Totals)})
	default:
		http.NotFound(w, r)
	}
}
