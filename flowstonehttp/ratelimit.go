package flowstonehttp

import (
	"context"
	"time"
)

// bucket is a token bucket for one host.
type bucket struct {
	tokens float64
	last   time.Time
}

// wait takes a token for host, waiting for one if needed.
func (c *Client) wait(ctx context.Context, host string) error {
	if c.opt.PerHost <= 0 {
		return nil
	}
	c.mu.Lock()
	b := c.hosts[host]
	now := time.Now()
	if b == nil {
		b = &bucket{tokens: float64(c.opt.Burst), last: now}
		c.hosts[host] = b
	}
	b.tokens = min(float64(c.opt.Burst), b.tokens+now.Sub(b.last).Seconds()*c.opt.PerHost)
	b.last = now
	// Take the token now, possibly going negative: later callers queue
	// behind this one instead of racing for the same refill.
	b.tokens--
	var delay time.Duration
	if b.tokens < 0 {
		delay = time.Duration(-b.tokens / c.opt.PerHost * float64(time.Second))
	}
	c.mu.Unlock()
	if delay == 0 {
		return nil
	}
	if err := c.sleep(ctx, delay); err != nil {
		c.mu.Lock()
		b.tokens++ // give the unused token back
		c.mu.Unlock()
		return err
	}
	return nil
}
