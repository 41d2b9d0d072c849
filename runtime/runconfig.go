package runtime

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// DefaultMaxRunConfigBytes is Config.MaxRunConfigBytes when it is zero.
const DefaultMaxRunConfigBytes = 1 << 20

// runConfigCacheSize bounds how many runs' decoded configs a process
// keeps: enough for the runs it works at once (a backfill's), few enough
// that large configs do not pile up.
const runConfigCacheSize = 8

// maxRunConfigBytes is the engine's limit on a run's encoded config.
func (e *Engine) maxRunConfigBytes() int {
	if e.cfg.MaxRunConfigBytes > 0 {
		return e.cfg.MaxRunConfigBytes
	}
	return DefaultMaxRunConfigBytes
}

// checkConfigSize refuses an encoded config over the limit before it is
// stored with a run or a backfill.
func (e *Engine) checkConfigSize(p *Pipeline, cfg []byte) error {
	if limit := e.maxRunConfigBytes(); len(cfg) > limit {
		return fmt.Errorf("%w: the %s encodes to %d bytes; a run's config is at most %d bytes (Config.MaxRunConfigBytes)",
			ErrBadConfig, p.config.typeName, len(cfg), limit)
	}
	return nil
}

// runConfigs decodes each run's config once per process, for the assets
// that take it, and keeps the newest few. Every job of a run gets the same
// decoded value, so asset code must treat its config as read-only.
type runConfigs struct {
	mu      sync.Mutex
	entries map[string]*runConfigEntry
	order   []string // run IDs, oldest first
	decodes atomic.Int64
}

type runConfigEntry struct {
	once  sync.Once
	value any
	found bool
	err   error
	// retry marks an error of the database, not of the config: the next
	// job reads it again.
	retry bool
}

// runConfig returns run's decoded config; found is false when the run has
// none.
func (e *Engine) runConfig(ctx context.Context, p *Pipeline, run string) (value any, found bool, err error) {
	c := &e.configs
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*runConfigEntry{}
	}
	ent, ok := c.entries[run]
	if !ok {
		ent = &runConfigEntry{}
		c.entries[run] = ent
		c.order = append(c.order, run)
		if len(c.order) > runConfigCacheSize {
			delete(c.entries, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	ent.once.Do(func() {
		raw, has, err := e.st.RunConfig(ctx, e.be.pool(), run)
		switch {
		case err != nil:
			ent.err, ent.retry = err, true
		case has:
			c.decodes.Add(1)
			ent.value, ent.err = p.config.Decode(raw)
			ent.found = ent.err == nil
		}
	})
	if ent.retry {
		c.mu.Lock()
		if c.entries[run] == ent {
			delete(c.entries, run)
			c.order = slices.DeleteFunc(c.order, func(id string) bool { return id == run })
		}
		c.mu.Unlock()
	}
	return ent.value, ent.found, ent.err
}
