-- A pending automation candidate keeps the upstream materializations that
-- triggered it (JSON, written by the runtime), so that when it is
-- evaluated again (after backpressure, or once the run that already had
-- it ends) "nothing new" is decided by what the asset's newest
-- materialization read of each, not by finish times. A table beside the
-- pending one (an added column cannot be written IF NOT EXISTS on
-- SQLite); a pending row without one is decided by finish time, as before.
CREATE TABLE IF NOT EXISTS flowstone_automation_news (
    pipeline      TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    news          TEXT NOT NULL,
    PRIMARY KEY (pipeline, asset, partition_key)
);
