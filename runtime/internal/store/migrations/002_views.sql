-- Alternative encodings of a value, by name (a scatter's per-item outcomes).
ALTER TABLE flowstone_materializations ADD COLUMN views TEXT;
