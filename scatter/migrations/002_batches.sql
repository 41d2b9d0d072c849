-- A scatter's items are stored by batch: one row per batch holding its
-- items (a JSON array) and their keys (a JSON array, NULL when items are
-- keyed by position). An item gets its row in flowstone_scatter_items only
-- once it has a result, so starting a scatter of 100,000 items inserts
-- 1,000 rows at batch 100, not 100,000. Scatters started before this
-- migration keep their pending item rows and are read from them.
CREATE TABLE IF NOT EXISTS flowstone_scatter_batches (
    run_id        TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    batch         INTEGER NOT NULL,
    items         TEXT NOT NULL,
    item_keys     TEXT,
    PRIMARY KEY (run_id, asset, partition_key, batch)
);
-- Item rows are now inserted once with their result and never updated, so
-- the primary key serves every read; the status index only cost inserts.
DROP INDEX IF EXISTS flowstone_scatter_items_status;
