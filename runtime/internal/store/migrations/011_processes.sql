-- The engine processes working jobs, one row per River client, each
-- refreshed every few seconds: a row left stale names a process that died,
-- whose running jobs another process takes over.
CREATE TABLE IF NOT EXISTS flowstone_processes (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
