-- Bounded recovery: how many times a run was taken over from a worker that died (or lost
-- its lease) holding it. Workers park a run that passes their max_recoveries; a retry
-- resets the count.
ALTER TABLE runs ADD COLUMN recoveries integer NOT NULL DEFAULT 0;
