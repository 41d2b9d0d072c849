-- Declarative automation (auto= on an asset), evaluated by one process at a
-- time. flowstone_automation holds each pipeline's cursor: the evaluation
-- reads the successful materializations that finished after it, so its
-- cost follows the new materializations, not the history.
CREATE TABLE IF NOT EXISTS flowstone_automation (
    pipeline     TEXT PRIMARY KEY,
    cursor_at    BIGINT NOT NULL,
    evaluations  INTEGER NOT NULL DEFAULT 0,
    evaluated_at BIGINT NOT NULL
);

-- Candidates an evaluation could not launch yet (backpressure, a window
-- that has not ended): the next evaluation tries them again.
CREATE TABLE IF NOT EXISTS flowstone_automation_pending (
    pipeline      TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    reason        TEXT NOT NULL,
    trigger_id    TEXT NOT NULL,
    trigger_at    BIGINT NOT NULL,
    PRIMARY KEY (pipeline, asset, partition_key)
);

-- Per automated asset: how far auto=missing has looked (the last
-- partition key it decided on), and whether the asset is overdue against
-- its freshness bound, so a change of state is reported once.
CREATE TABLE IF NOT EXISTS flowstone_automation_assets (
    pipeline     TEXT NOT NULL,
    asset        TEXT NOT NULL,
    missing_done TEXT,
    overdue      INTEGER NOT NULL DEFAULT 0,
    overdue_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pipeline, asset)
);

-- Every decision an evaluation took: launched (run_id), skipped, deferred
-- or refused, with the reason.
CREATE TABLE IF NOT EXISTS flowstone_automation_decisions (
    id            TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    decision      TEXT NOT NULL,
    run_id        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    evaluated_at  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS flowstone_automation_decisions_time ON flowstone_automation_decisions (pipeline, evaluated_at, id);
CREATE INDEX IF NOT EXISTS flowstone_automation_decisions_asset ON flowstone_automation_decisions (pipeline, asset, evaluated_at, id);

-- The running runs of a pipeline (backpressure counts the automated ones)
-- without reading finished ones.
CREATE INDEX IF NOT EXISTS flowstone_runs_running ON flowstone_runs (pipeline, run_key) WHERE status = 'running';
