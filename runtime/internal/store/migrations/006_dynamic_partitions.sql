-- The keys of dynamic partition sets, added and removed at run time.
CREATE TABLE flowstone_dynamic_partitions (
    set_name      TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    added_at      BIGINT NOT NULL,
    PRIMARY KEY (set_name, partition_key)
);
