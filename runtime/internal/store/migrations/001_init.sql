-- FlowStone's own tables. One file serves SQLite and PostgreSQL: times are
-- BIGINT microseconds since the epoch, booleans INTEGER, documents TEXT.

CREATE TABLE flowstone_runs (
    id            TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    targets       TEXT NOT NULL,
    config        TEXT,
    config_hash   TEXT NOT NULL,
    force         INTEGER NOT NULL,
    status        TEXT NOT NULL,
    total         INTEGER NOT NULL,
    created_at    BIGINT NOT NULL,
    finished_at   BIGINT
);
CREATE INDEX flowstone_runs_pipeline_created ON flowstone_runs (pipeline, created_at);

-- One row per asset and partition of a run: the run's state machine.
-- deps counts the asset's dependencies in the run, required those it cannot
-- run without (all but Outcome ones); both are fixed when the run starts.
-- early is set when a strategy's deadline passed: the asset then starts
-- once its required dependencies have arrived.
CREATE TABLE flowstone_run_assets (
    run_id             TEXT NOT NULL,
    asset              TEXT NOT NULL,
    partition_key      TEXT NOT NULL,
    status             TEXT NOT NULL,
    deps               INTEGER NOT NULL,
    required           INTEGER NOT NULL,
    early              INTEGER NOT NULL DEFAULT 0,
    materialization_id TEXT,
    job_id             BIGINT,
    attempts           INTEGER NOT NULL DEFAULT 0,
    error              TEXT NOT NULL DEFAULT '',
    started_at         BIGINT,
    finished_at        BIGINT,
    PRIMARY KEY (run_id, asset, partition_key)
);
CREATE INDEX flowstone_run_assets_status ON flowstone_run_assets (run_id, status);

-- One row per dependency that became terminal, for its dependent: inserted
-- in the transaction that finishes the upstream, counted (after it commits)
-- to decide whether the dependent is ready. Appending rows instead of
-- decrementing a counter keeps finishing upstreams from queueing on one
-- row's lock. block says what the arrival does to a dependent that requires
-- it: '' (nothing), 'upstream_failed' or 'skipped'.
CREATE TABLE flowstone_arrivals (
    run_id             TEXT NOT NULL,
    asset              TEXT NOT NULL,
    partition_key      TEXT NOT NULL,
    upstream           TEXT NOT NULL,
    upstream_partition TEXT NOT NULL,
    required           INTEGER NOT NULL,
    block              TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, partition_key, upstream, upstream_partition)
);

-- The run's dependency edges between (asset, partition) nodes: a daily
-- asset over an hourly one has an edge per hour it covers.
CREATE TABLE flowstone_run_edges (
    run_id             TEXT NOT NULL,
    asset              TEXT NOT NULL,
    partition_key      TEXT NOT NULL,
    upstream           TEXT NOT NULL,
    upstream_partition TEXT NOT NULL,
    required           INTEGER NOT NULL,
    PRIMARY KEY (run_id, upstream, upstream_partition, asset, partition_key)
);
CREATE INDEX flowstone_run_edges_down ON flowstone_run_edges (run_id, asset, partition_key);

-- Every terminal materialization: succeeded, skipped or failed.
CREATE TABLE flowstone_materializations (
    id            TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    status        TEXT NOT NULL,
    code_version  TEXT NOT NULL,
    config_hash   TEXT NOT NULL,
    input_hash    TEXT NOT NULL,
    value         TEXT,
    external      INTEGER NOT NULL DEFAULT 0,
    metadata      TEXT NOT NULL DEFAULT '{}',
    attempts      INTEGER NOT NULL,
    error         TEXT NOT NULL DEFAULT '',
    started_at    BIGINT NOT NULL,
    finished_at   BIGINT NOT NULL
);
CREATE INDEX flowstone_materializations_latest
    ON flowstone_materializations (pipeline, asset, partition_key, status, finished_at);
CREATE INDEX flowstone_materializations_run ON flowstone_materializations (run_id);

-- The exact upstream materializations each materialization read.
CREATE TABLE flowstone_lineage (
    materialization_id          TEXT NOT NULL,
    upstream_asset              TEXT NOT NULL,
    upstream_partition          TEXT NOT NULL,
    upstream_materialization_id TEXT NOT NULL,
    PRIMARY KEY (materialization_id, upstream_asset, upstream_partition)
);

-- Durable per-run state of strategies (a router's decision, a gate's
-- approval), written once.
CREATE TABLE flowstone_state (
    run_id        TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    name          TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (run_id, partition_key, name)
);
