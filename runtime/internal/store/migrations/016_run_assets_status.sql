-- The statements that move one node (ClaimAsset, StartAttempt, FinishAttempt,
-- FailAsset) filter on its status. On a run's freshly inserted rows, which
-- have no statistics yet, PostgreSQL prefers (run_id, status) to the primary
-- key and filters the run's nodes of that status by asset: each update of an
-- n-node run read up to n rows, and planning a run of 10,000 independent
-- assets took about a minute. With the node's key in the index, whichever
-- index the planner picks finds the row.
DROP INDEX IF EXISTS flowstone_run_assets_status;
CREATE INDEX IF NOT EXISTS flowstone_run_assets_status ON flowstone_run_assets (run_id, status, asset, partition_key);
