-- Flow control: named queues with limits, priorities, per-key concurrency.
ALTER TABLE runs ADD COLUMN queue text NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN concurrency_key text;
-- Claims look up runnable runs by queue; the earliest timer and lease over all queues
-- still come from the single-column indexes of version 1.
CREATE INDEX runs_pending_by_queue ON runs (queue, priority DESC, created_at)
    WHERE status = 'pending';
CREATE INDEX runs_timers_by_queue ON runs (queue, wake_at) WHERE status = 'waiting';
CREATE INDEX runs_leases_by_queue ON runs (queue, lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_queue_running ON runs (queue, concurrency_key) WHERE status = 'running';
CREATE INDEX runs_queue_started ON runs (queue, started_at);
CREATE TABLE queues (
    name             text PRIMARY KEY,
    concurrency      integer,
    key_concurrency  integer,
    rate_limit       integer,
    rate_period      double precision
);
