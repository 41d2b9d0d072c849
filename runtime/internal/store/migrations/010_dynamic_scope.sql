-- Dynamic partition sets are scoped to their pipeline: scope is the
-- pipeline's name, or '' for a set declared shared. Keys added before
-- were common to every pipeline; each pipeline that has run keeps them,
-- and so does the shared scope.
CREATE TABLE flowstone_dynamic_partitions_v2 (
    scope         TEXT NOT NULL,
    set_name      TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (scope, set_name, partition_key)
);
INSERT INTO flowstone_dynamic_partitions_v2 (scope, set_name, partition_key, added_at)
SELECT '', set_name, partition_key, added_at FROM flowstone_dynamic_partitions;
INSERT INTO flowstone_dynamic_partitions_v2 (scope, set_name, partition_key, added_at)
SELECT p.pipeline, d.set_name, d.partition_key, d.added_at
FROM flowstone_dynamic_partitions d, (SELECT DISTINCT pipeline FROM flowstone_runs) p;
DROP TABLE flowstone_dynamic_partitions;
ALTER TABLE flowstone_dynamic_partitions_v2 RENAME TO flowstone_dynamic_partitions;
