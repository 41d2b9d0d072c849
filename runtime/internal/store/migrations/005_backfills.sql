-- A backfill: many partitions of the same targets, at most max_concurrent
-- runs at once, resumable from the database alone.
CREATE TABLE flowstone_backfills (
    id             TEXT PRIMARY KEY,
    pipeline       TEXT NOT NULL,
    targets        TEXT NOT NULL,
    config         TEXT,
    force          INTEGER NOT NULL,
    max_concurrent INTEGER NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    finished_at    BIGINT
);

CREATE TABLE flowstone_backfill_partitions (
    backfill_id   TEXT NOT NULL,
    idx           INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    status        TEXT NOT NULL,
    run_id        TEXT,
    PRIMARY KEY (backfill_id, idx)
);
CREATE INDEX flowstone_backfill_partitions_status ON flowstone_backfill_partitions (backfill_id, status);

ALTER TABLE flowstone_runs ADD COLUMN backfill_id TEXT NOT NULL DEFAULT '';
