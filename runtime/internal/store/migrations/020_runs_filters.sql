-- The run list filtered by status or by partition (the page's filters, the
-- runs command), newest first: without these the pipeline's runs were read
-- newest first until enough matched, so a filter that matches few runs read
-- them all. A run's status changes a few times in its life, so the cost is
-- a few index writes a run, none a materialization.
CREATE INDEX IF NOT EXISTS flowstone_runs_status_created ON flowstone_runs (pipeline, status, created_at, id);
CREATE INDEX IF NOT EXISTS flowstone_runs_partition_created ON flowstone_runs (pipeline, partition_key, created_at, id);
