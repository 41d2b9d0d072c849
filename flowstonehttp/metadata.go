package flowstonehttp

import (
	"context"
	"io"
	"strconv"
	"sync"

	"github.com/flowstone-go/flowstone"
)

// Summary is what a Client records on the materialization under
// MetadataKey: totals over every attempt of every call the asset made, and
// the last attempt.
type Summary struct {
	Requests      int            `json:"requests"`
	Errors        int            `json:"errors"` // attempts with no response
	Status        map[string]int `json:"status"` // attempts by status code
	BytesSent     int64          `json:"bytes_sent"`
	BytesReceived int64          `json:"bytes_received"` // body bytes read
	LatencyMS     float64        `json:"latency_ms"`     // to the response headers, summed
	Last          *Call          `json:"last,omitempty"`
}

// Call is one attempt.
type Call struct {
	Method    string  `json:"method"`
	URL       string  `json:"url"` // without query or user info
	Attempt   int     `json:"attempt"`
	Status    int     `json:"status,omitempty"`
	Error     string  `json:"error,omitempty"`
	BytesSent int64   `json:"bytes_sent"`
	LatencyMS float64 `json:"latency_ms"`
}

// record adds an attempt (call) or bytes received to the summary.
func record(ctx context.Context, call Call, received int64) {
	flowstone.UpdateMetadata(ctx, MetadataKey, func(old any) any {
		s, _ := old.(*Summary)
		if s == nil {
			s = &Summary{Status: map[string]int{}}
		}
		s.BytesReceived += received
		if call.Method == "" {
			return s
		}
		s.Requests++
		if call.Status == 0 {
			s.Errors++
		} else {
			s.Status[strconv.Itoa(call.Status)]++
		}
		s.BytesSent += call.BytesSent
		s.LatencyMS += call.LatencyMS
		c := call
		s.Last = &c
		return s
	})
}

// countingBody counts the bytes read from a response body into the
// summary, and ends the attempt's timeout when closed.
type countingBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
	n      int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.flush()
	}
	return n, err
}

func (b *countingBody) Close() error {
	err := b.ReadCloser.Close()
	b.flush()
	b.cancel()
	return err
}

func (b *countingBody) flush() {
	b.once.Do(func() { record(b.ctx, Call{}, b.n) })
}
