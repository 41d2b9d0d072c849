-- An automation evaluation reads one pipeline's successful
-- materializations that finished after its cursor: this index holds only
-- those, by pipeline and time, so the range read is what is new, whatever
-- the history and the other pipelines (SQLite read every materialization
-- of the pipeline through (pipeline, asset, partition_key, ...) and sorted
-- them). Partial, so that it serves only statements that name the status
-- 'succeeded' literally: an index on (pipeline, status, ...) drew queries
-- about one asset away from the asset's own indexes.
CREATE INDEX IF NOT EXISTS flowstone_materializations_news ON flowstone_materializations (pipeline, finished_at, id) WHERE status = 'succeeded';
