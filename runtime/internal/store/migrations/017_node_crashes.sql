-- Crash attribution owned by the engine instead of River's rescue count.
-- A node whose job is delivered while the node is still running had an
-- attempt whose process died. crashes counts those deaths for the node:
-- the first once, however it happened (the node may only have been running
-- next to the job that killed the process), and then each one that
-- happened while the node ran alone in its process (alone = 1), which can
-- only be its own. The node fails at 3.
ALTER TABLE flowstone_run_assets ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flowstone_run_assets ADD COLUMN alone INTEGER NOT NULL DEFAULT 0;
