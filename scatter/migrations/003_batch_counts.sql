-- A scatter started since this migration counts its items on its batch
-- rows, not on the barrier: a batch adds what it recorded to its own row
-- (done, failed) and marks it finished once every item of it has a
-- result, so concurrent batches share no row. The barrier is completed by
-- a compare-and-set on its status by a batch that finds no batch left
-- unfinished (flowstone_scatter_batches_open), after its own commit; its
-- done is written then. failed stays on the barrier too, added to only by
-- a group that failed items, so the failure threshold is decided exactly.
-- claimed marks the batch that launched its successor under
-- max_concurrent, once. Scatters started before keep counting on the
-- barrier (by_batch = 0).
ALTER TABLE flowstone_scatter_barriers ADD COLUMN by_batch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flowstone_scatter_batches ADD COLUMN done INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flowstone_scatter_batches ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flowstone_scatter_batches ADD COLUMN finished INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flowstone_scatter_batches ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
-- Only the batches not yet finished: "is any batch left?" reads one entry.
CREATE INDEX flowstone_scatter_batches_open ON flowstone_scatter_batches (run_id, asset, partition_key, batch) WHERE finished = 0;
