-- The scatter kind's tables. IF NOT EXISTS: databases created before the
-- kind kept its own migrations have them already.

-- One barrier per scatter asset, run and partition: the items' progress,
-- counted atomically; the job that finishes the last item gathers.
CREATE TABLE IF NOT EXISTS flowstone_scatter_barriers (
    run_id        TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    total         INTEGER NOT NULL,
    batch         INTEGER NOT NULL,
    batches       INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    next_batch    INTEGER NOT NULL,
    next_at       BIGINT NOT NULL,
    status        TEXT NOT NULL,
    error         TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT,
    PRIMARY KEY (run_id, asset, partition_key)
);

-- Each item of a scatter, with its result once it has one.
CREATE TABLE IF NOT EXISTS flowstone_scatter_items (
    run_id        TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    item_key      TEXT NOT NULL,
    item          TEXT NOT NULL,
    status        TEXT NOT NULL,
    value         TEXT,
    error         TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    started_at    BIGINT,
    finished_at   BIGINT,
    PRIMARY KEY (run_id, asset, partition_key, idx)
);
-- idx last: without it PostgreSQL, with no statistics yet for rows just
-- inserted, may update an item through this index and scan every pending
-- item of the scatter (measured: 640s instead of 19s for 100,000 items).
CREATE INDEX IF NOT EXISTS flowstone_scatter_items_status ON flowstone_scatter_items (run_id, asset, partition_key, status, idx);
