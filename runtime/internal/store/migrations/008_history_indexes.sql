-- Indexes that make the history queries cost what they return, however long
-- the history grows.

-- An asset's newest materializations (Latest, Materializations), and the
-- newest per partition (the partitions status), read in index order.
CREATE INDEX IF NOT EXISTS flowstone_materializations_asset_time
    ON flowstone_materializations (pipeline, asset, finished_at, id);
CREATE INDEX IF NOT EXISTS flowstone_materializations_partition_time
    ON flowstone_materializations (pipeline, asset, partition_key, finished_at, id);
-- Retention walks materializations by age, and checks whether anything
-- still points at one.
CREATE INDEX IF NOT EXISTS flowstone_materializations_age ON flowstone_materializations (finished_at, id);
CREATE INDEX IF NOT EXISTS flowstone_lineage_upstream ON flowstone_lineage (upstream_materialization_id);
CREATE INDEX IF NOT EXISTS flowstone_run_assets_materialization ON flowstone_run_assets (materialization_id);

-- Run lists, newest first, of every pipeline or of one.
CREATE INDEX IF NOT EXISTS flowstone_runs_created ON flowstone_runs (created_at, id);
DROP INDEX IF EXISTS flowstone_runs_pipeline_created;
CREATE INDEX IF NOT EXISTS flowstone_runs_pipeline_created ON flowstone_runs (pipeline, created_at, id);
-- Retention walks runs by age.
CREATE INDEX IF NOT EXISTS flowstone_runs_finished ON flowstone_runs (finished_at);

-- Status first: the gates waiting, and the partitions being worked on,
-- without reading finished rows.
CREATE INDEX IF NOT EXISTS flowstone_run_assets_active ON flowstone_run_assets (status, started_at);
