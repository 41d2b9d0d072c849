-- Strategy state is keyed by asset too: two gates of one run at one
-- partition kept their values under the same key. Existing rows take the
-- asset from the router's state name, or from the one asset then waiting at
-- their partition (a held gate); rows of finished assets are only read
-- again by a retry, which no longer happens.
CREATE TABLE flowstone_state_v2 (
    run_id        TEXT NOT NULL,
    asset         TEXT NOT NULL,
    partition_key TEXT NOT NULL,
    name          TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (run_id, asset, partition_key, name)
);
INSERT INTO flowstone_state_v2 (run_id, asset, partition_key, name, value)
SELECT s.run_id,
       CASE WHEN s.name LIKE 'route:%' THEN substr(s.name, 7)
            ELSE COALESCE((SELECT min(ra.asset) FROM flowstone_run_assets ra
                           WHERE ra.run_id = s.run_id AND ra.partition_key = s.partition_key AND ra.status = 'waiting'), '')
       END,
       s.partition_key, s.name, s.value
FROM flowstone_state s;
DROP TABLE flowstone_state;
ALTER TABLE flowstone_state_v2 RENAME TO flowstone_state;
