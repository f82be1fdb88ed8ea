-- Flow control: named queues with limits, priorities, per-key concurrency.
ALTER TABLE runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN concurrency_key TEXT;
-- Claims look up runnable runs by queue; the earliest timer and lease over all queues
-- still come from the single-column indexes of version 1.
CREATE INDEX runs_pending_by_queue ON runs (queue, priority DESC, created_at)
    WHERE status = 'pending';
CREATE INDEX runs_timers_by_queue ON runs (queue, wake_at) WHERE status = 'waiting';
CREATE INDEX runs_leases_by_queue ON runs (queue, lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_queue_running ON runs (queue, concurrency_key) WHERE status = 'running';
CREATE INDEX runs_queue_started ON runs (queue, started_at);
CREATE TABLE queues (
    name             TEXT PRIMARY KEY,
    concurrency      INTEGER,
    key_concurrency  INTEGER,
    rate_limit       INTEGER,
    rate_period      REAL
);
