-- The trace a run belongs to (a W3C traceparent), recorded with the run when
-- the engine traces, so that attempts worked by any process join it.
CREATE TABLE IF NOT EXISTS flowstone_run_traces (
    run_id     TEXT PRIMARY KEY,
    traceparent TEXT NOT NULL
);
