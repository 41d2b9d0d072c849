-- Each sensor's cursor and last evaluation, kept across restarts.
CREATE TABLE flowstone_sensors (
    pipeline     TEXT NOT NULL,
    name         TEXT NOT NULL,
    cursor       TEXT NOT NULL DEFAULT '',
    evaluations  INTEGER NOT NULL DEFAULT 0,
    runs         INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    evaluated_at BIGINT,
    PRIMARY KEY (pipeline, name)
);
