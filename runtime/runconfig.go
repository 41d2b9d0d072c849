package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/runtime/internal/store"
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

// runCacheSize bounds how many runs' unchanging fields a process keeps.
const runCacheSize = 64

// knownRuns keeps what the jobs of a run need of it and that never
// changes (store.RunInfo, with the set of assets a forced run recomputes),
// so that a job reads it once per process and run instead of with each
// job.
type knownRuns struct {
	mu    sync.Mutex
	m     map[string]*knownRun
	order []string // run IDs, oldest first
}

// knownRun is a run as its jobs see it.
type knownRun struct {
	run       *runCtx
	hasConfig bool
}

// remember keeps info as run id's, unless known already, and returns it.
func (k *knownRuns) remember(p *Pipeline, id string, info store.RunInfo) *knownRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r, ok := k.m[id]; ok {
		return r
	}
	if k.m == nil {
		k.m = map[string]*knownRun{}
	}
	var targets []string
	if info.Force {
		_ = json.Unmarshal([]byte(info.Targets), &targets)
	}
	r := &knownRun{hasConfig: info.HasConfig, run: &runCtx{id: id, p: p, partition: flowstone.Partition(info.Partition),
		forced: forcedSet(p, info.Force, targets), configHash: info.ConfigHash, backfill: info.Backfill}}
	k.m[id] = r
	k.order = append(k.order, id)
	if len(k.order) > runCacheSize {
		delete(k.m, k.order[0])
		k.order = k.order[1:]
	}
	return r
}

// knownRun returns run id as this process knows it, reading it the first
// time; nil when it is not recorded.
func (e *Engine) knownRun(ctx context.Context, p *Pipeline, id string) (*knownRun, error) {
	e.runs.mu.Lock()
	r := e.runs.m[id]
	e.runs.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var info store.RunInfo
	var found bool
	err := e.out.ride(ctx, func(ctx context.Context) (err error) {
		info, found, err = e.st.RunInfo(ctx, e.be.pool(), id)
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	return e.runs.remember(p, id, info), nil
}
