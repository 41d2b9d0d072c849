-- What asset code logged through flowstone.Logger, one row per job of an
-- attempt (a resumed attempt adds one per continuation), each bounded by
-- the engine; lines are JSON objects, one a line.
CREATE TABLE IF NOT EXISTS flowstone_logs (
    run_id        TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    job_id        BIGINT NOT NULL,
    logged_at     BIGINT NOT NULL,
    truncated     INTEGER NOT NULL,
    lines         TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, partition_key, attempt, job_id)
);
