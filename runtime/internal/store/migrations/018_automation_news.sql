-- A pending automation candidate keeps the upstream materializations that
-- triggered it (JSON, written by the runtime), so that when it is
-- evaluated again (after backpressure, or once the run that already had
-- it ends) "nothing new" is decided by what the asset's newest
-- materialization read of each, not by finish times. Rows from before
-- have none and are decided by finish time, as they were.
ALTER TABLE flowstone_automation_pending ADD COLUMN news TEXT NOT NULL DEFAULT '';
