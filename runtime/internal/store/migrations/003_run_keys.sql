-- A run key makes a request happen once (schedule ticks, sensor requests).
ALTER TABLE flowstone_runs ADD COLUMN run_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX flowstone_runs_key ON flowstone_runs (pipeline, run_key) WHERE run_key <> '';
