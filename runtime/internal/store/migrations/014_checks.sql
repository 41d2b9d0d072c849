-- One row per asset check evaluated against a materialization: after each
-- materialization of its asset (run_id set) or run alone (run_id empty).
-- A materialization is checked once per check: the key makes a redelivered
-- check job record nothing twice.
CREATE TABLE IF NOT EXISTS flowstone_check_results (
    materialization_id TEXT NOT NULL,
    name               TEXT NOT NULL,
    pipeline           TEXT NOT NULL,
    asset              TEXT NOT NULL,
    partition_key      TEXT NOT NULL,
    run_id             TEXT NOT NULL,
    blocking           INTEGER NOT NULL,
    passed             INTEGER NOT NULL,
    severity           TEXT NOT NULL,
    description        TEXT NOT NULL,
    metadata           TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (materialization_id, name)
);
CREATE INDEX IF NOT EXISTS flowstone_check_results_asset ON flowstone_check_results (pipeline, asset, created_at);
