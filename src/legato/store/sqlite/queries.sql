-- Every SQL statement the SQLite store runs, by name. Loaded by queries.py.

-- name: insert_run
INSERT INTO runs (run_id, workflow, version, status, input, parent_run_id, parent_seq,
                  created_at, updated_at, queue, priority, concurrency_key, detached,
                  deadline_at, requires, signals)
VALUES (:run_id, :workflow, :version, 'pending', :input, :parent_run_id, :parent_seq,
        :now, :now, :queue, :priority, :concurrency_key, :detached, :deadline_at, :requires,
        :signals)
ON CONFLICT (run_id) DO NOTHING;

-- name: get_run
SELECT * FROM runs WHERE run_id = :run_id;

-- name: list_runs
-- Keyset pages: after the (created_at, run_id) of the last row seen, so runs inserted
-- meanwhile never shift a page (no duplicates, no gaps).
SELECT * FROM runs
WHERE (:status IS NULL OR status = :status) AND (:workflow IS NULL OR workflow = :workflow)
  AND (:queue IS NULL OR queue = :queue)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before)
  AND (:cursor_at IS NULL OR created_at < :cursor_at
       OR (created_at = :cursor_at AND run_id < :cursor_id))
ORDER BY created_at DESC, run_id DESC
LIMIT :limit;

-- name: count_runs
SELECT COUNT(*) AS n FROM runs
WHERE (:status IS NULL OR status = :status) AND (:workflow IS NULL OR workflow = :workflow)
  AND (:queue IS NULL OR queue = :queue)
  AND (:created_after IS NULL OR created_at >= :created_after)
  AND (:created_before IS NULL OR created_at < :created_before);

-- name: get_journal
SELECT * FROM journal WHERE run_id = :run_id ORDER BY rowid;

-- name: insert_signal
INSERT INTO signals (run_id, name, payload, created_at) VALUES (:run_id, :name, :payload, :now);

-- name: wake_for_signal
UPDATE runs SET status = 'pending', wake_at = NULL, wait_signals = NULL, updated_at = :now
WHERE run_id = :run_id AND status = 'waiting'
  AND EXISTS (SELECT 1 FROM json_each(runs.wait_signals) WHERE value = :name);

-- name: request_cancel
UPDATE runs SET cancel_requested = 1, updated_at = :now,
       status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END,
       wake_at = CASE WHEN status = 'waiting' THEN NULL ELSE wake_at END
WHERE run_id = :run_id AND status NOT IN ('completed', 'failed', 'cancelled');

-- name: candidates_expired
-- A run is a candidate only if the worker's capabilities hold all the run requires (the
-- Python functions and task kinds a blueprint calls); NULL requires nothing.
-- INDEXED BY: the planner would otherwise walk every run of the queue (finished ones too).
SELECT run_id, queue, concurrency_key, started_at, owner FROM runs INDEXED BY runs_leases_by_queue
WHERE status = 'running' AND lease_expires_at < :lease_now
  AND (workflow IN (SELECT value FROM json_each(:workflows))
       OR EXISTS (SELECT 1 FROM json_each(:families) f
                  WHERE substr(workflow, 1, length(f.value)) = f.value))
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (requires IS NULL OR NOT EXISTS (
       SELECT 1 FROM json_each(requires) r
       WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
  AND paused = 0
  AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
  AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')
LIMIT :scan;

-- name: candidates_due
SELECT run_id, queue, concurrency_key, started_at FROM runs INDEXED BY runs_timers_by_queue
WHERE status = 'waiting' AND wake_at <= :now
  AND (workflow IN (SELECT value FROM json_each(:workflows))
       OR EXISTS (SELECT 1 FROM json_each(:families) f
                  WHERE substr(workflow, 1, length(f.value)) = f.value))
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (requires IS NULL OR NOT EXISTS (
       SELECT 1 FROM json_each(requires) r
       WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
  AND paused = 0
  AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
  AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')
LIMIT :scan;

-- name: candidates_pending
SELECT run_id, queue, concurrency_key, started_at FROM runs INDEXED BY runs_pending_by_queue
WHERE status = 'pending'
  AND (workflow IN (SELECT value FROM json_each(:workflows))
       OR EXISTS (SELECT 1 FROM json_each(:families) f
                  WHERE substr(workflow, 1, length(f.value)) = f.value))
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (requires IS NULL OR NOT EXISTS (
       SELECT 1 FROM json_each(requires) r
       WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
  AND paused = 0
  AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
  AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')
ORDER BY priority DESC, created_at
LIMIT :scan;

-- name: claim_chosen

-- A run still 'running' had an expired lease: its worker died (or stalled) holding it,
-- so this claim is a recovery (the SET sees the row as it was).
UPDATE runs SET status = 'running', owner = :owner, lease_epoch = lease_epoch + 1,
       lease_expires_at = :lease_until, started_at = COALESCE(started_at, :now),
       updated_at = :now, wake_at = NULL, wait_signals = NULL,
       recoveries = recoveries + CASE WHEN status = 'running' THEN 1 ELSE 0 END
WHERE run_id IN (SELECT value FROM json_each(:ids))
RETURNING *;

-- name: lock_queue_limits
-- SQLite has one writer: claims take turns without a lock.
SELECT * FROM queues WHERE name IN (SELECT value FROM json_each(:queues)) ORDER BY name;

-- name: claimed_journals
SELECT * FROM journal WHERE run_id IN (SELECT value FROM json_each(:ids)) ORDER BY rowid;

-- name: claimed_signals
SELECT signal_id, run_id, name, payload, created_at FROM signals
WHERE run_id IN (SELECT value FROM json_each(:ids)) AND consumed_seq IS NULL ORDER BY signal_id;

-- name: queue_running
SELECT queue, concurrency_key, COUNT(*) AS n FROM runs
WHERE status = 'running' AND lease_expires_at >= :lease_now
  AND queue IN (SELECT value FROM json_each(:queues))
GROUP BY queue, concurrency_key;

-- name: queue_starts
SELECT COUNT(*) AS n FROM runs WHERE queue = :queue AND started_at >= :since;

-- name: upsert_queue
INSERT INTO queues (name, concurrency, key_concurrency, rate_limit, rate_period)
VALUES (:name, :concurrency, :key_concurrency, :rate_limit, :rate_period)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
    key_concurrency = excluded.key_concurrency, rate_limit = excluded.rate_limit,
    rate_period = excluded.rate_period;

-- name: list_queues
SELECT * FROM queues ORDER BY name;

-- name: upsert_entry
INSERT INTO journal (run_id, seq, kind, name, status, attempts, input, output, error,
                     started_at, ended_at, wake_at, child_run_id, attempt_log, progress)
SELECT :run_id, :seq, :kind, :name, :status, :attempts, :input, :output, :error,
       :started_at, :ended_at, :wake_at, :child_run_id, :attempt_log, :progress
WHERE EXISTS (SELECT 1 FROM runs
              WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch)
ON CONFLICT (run_id, seq) DO UPDATE SET
    status = excluded.status, attempts = excluded.attempts,
    input = COALESCE(excluded.input, journal.input),
    output = excluded.output, error = excluded.error,
    started_at = COALESCE(journal.started_at, excluded.started_at),
    ended_at = excluded.ended_at, wake_at = excluded.wake_at,
    child_run_id = COALESCE(excluded.child_run_id, journal.child_run_id),
    attempt_log = COALESCE(excluded.attempt_log, journal.attempt_log),
    progress = COALESCE(excluded.progress, journal.progress);

-- name: oldest_signal
SELECT signal_id, run_id, name, payload, created_at FROM signals
WHERE run_id = :run_id AND consumed_seq IS NULL AND name IN (SELECT value FROM json_each(:names))
ORDER BY signal_id LIMIT 1;

-- name: consume_signal
UPDATE signals SET consumed_seq = :seq WHERE signal_id = :signal_id;

-- name: get_entry
SELECT * FROM journal WHERE run_id = :run_id AND seq = :seq;

-- name: check_lease
SELECT 1 FROM runs WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch;

-- name: signal_waiting
SELECT 1 FROM signals
WHERE run_id = :run_id AND consumed_seq IS NULL AND name IN (SELECT value FROM json_each(:names))
LIMIT 1;

-- name: child_done
SELECT 1 FROM journal
WHERE run_id = :run_id AND status != 'waiting' AND seq IN (SELECT value FROM json_each(:seqs))
LIMIT 1;

-- name: suspend_run
UPDATE runs SET status = :status, wake_at = :wake_at, wait_signals = :wait_signals,
       owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch;

-- name: finish_run
UPDATE runs SET status = :status, output = :output, error = :error, ended_at = :now,
       updated_at = :now, owner = NULL, lease_expires_at = NULL, wake_at = NULL,
       wait_signals = NULL
WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch
RETURNING parent_run_id, parent_seq;

-- name: cancel_children
-- A parent that ends takes its attached children with it (they cancel at their next await).
UPDATE runs SET cancel_requested = 1, updated_at = :now,
       status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END,
       wake_at = CASE WHEN status = 'waiting' THEN NULL ELSE wake_at END
WHERE parent_run_id = :run_id AND detached = 0
  AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING run_id;

-- name: resolve_child_entry
UPDATE journal SET status = :status, output = :output, error = :error, ended_at = :now
WHERE run_id = :parent_run_id AND seq = :parent_seq AND status = 'waiting'
  AND child_run_id = :child_run_id;

-- name: wake_run
UPDATE runs SET status = 'pending', wake_at = NULL, wait_signals = NULL, updated_at = :now
WHERE run_id = :run_id AND status = 'waiting';

-- name: release_run
UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL, updated_at = :now
WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch;

-- name: probe_insert
-- A row nobody reads (it is deleted in the same transaction): see workers.probe_write.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, workflows)
VALUES (:worker_id, '', 0, :now, :now, :padding);

-- name: upsert_worker
-- What the worker can run is written with every beat: it is what the worker claims by.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, app, queues, workflows,
                     capabilities)
VALUES (:worker_id, :host, :pid, :started_at, :heartbeat_at, :app, :queues, :workflows,
        :capabilities)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    app = excluded.app, queues = excluded.queues, workflows = excluded.workflows,
    capabilities = excluded.capabilities;

-- name: renew_leases
UPDATE runs SET lease_expires_at = :lease_until
WHERE owner = :owner AND status = 'running' AND run_id IN (SELECT value FROM json_each(:ids));

-- name: owned_runs
SELECT run_id, lease_epoch, cancel_requested,
       paused OR EXISTS (SELECT 1 FROM pauses p WHERE
           (p.scope = 'queue' AND p.name = runs.queue)
           OR (p.scope = 'workflow' AND p.name = runs.workflow)) AS paused
FROM runs WHERE owner = :owner AND status = 'running';

-- name: delete_worker
DELETE FROM workers WHERE worker_id = :worker_id;

-- name: list_workers
SELECT w.*, (SELECT COUNT(*) FROM runs r WHERE r.owner = w.worker_id AND r.status = 'running')
       AS runs
FROM workers w ORDER BY heartbeat_at DESC;

-- name: expire_leases
UPDATE runs SET lease_expires_at = 0 WHERE owner = :owner AND status = 'running';

-- name: next_wake
-- Only runs this worker could claim: a due timer of a run it cannot take must not
-- keep it from sleeping (the same filters as the candidates).
SELECT (SELECT MIN(wake_at) FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL
  AND (workflow IN (SELECT value FROM json_each(:workflows))
       OR EXISTS (SELECT 1 FROM json_each(:families) f
                  WHERE substr(workflow, 1, length(f.value)) = f.value))
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (requires IS NULL OR NOT EXISTS (
       SELECT 1 FROM json_each(requires) r
       WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
  AND paused = 0
  AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
  AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')) AS timer,
       (SELECT MIN(lease_expires_at) FROM runs WHERE status = 'running'
  AND (workflow IN (SELECT value FROM json_each(:workflows))
       OR EXISTS (SELECT 1 FROM json_each(:families) f
                  WHERE substr(workflow, 1, length(f.value)) = f.value))
  AND queue IN (SELECT value FROM json_each(:queues))
  AND (requires IS NULL OR NOT EXISTS (
       SELECT 1 FROM json_each(requires) r
       WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
  AND paused = 0
  AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
  AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')) AS lease;

-- name: insert_pause
INSERT INTO pauses (scope, name, created_at) VALUES (:scope, :name, :now)
ON CONFLICT (scope, name) DO NOTHING;

-- name: delete_pause
DELETE FROM pauses WHERE scope = :scope AND name = :name;

-- name: list_pauses
SELECT scope, name, created_at FROM pauses ORDER BY scope, name;

-- name: set_run_paused
UPDATE runs SET paused = :paused, updated_at = :now WHERE run_id = :run_id;

-- name: delete_entry
DELETE FROM journal WHERE run_id = :run_id AND seq = :seq;

-- name: unconsume_signal
UPDATE signals SET consumed_seq = NULL WHERE run_id = :run_id AND consumed_seq = :seq;

-- name: redrive_run
UPDATE runs SET status = 'pending', output = NULL, error = NULL, ended_at = NULL,
       cancel_requested = 0, wake_at = NULL, wait_signals = NULL, owner = NULL,
       lease_expires_at = NULL, redrives = redrives + 1, recoveries = 0,
       updated_at = :now,
       deadline_at = CASE WHEN deadline_at <= :now THEN NULL ELSE deadline_at END
WHERE run_id = :run_id AND status = :status;

-- name: insert_blueprint
-- Published versions are immutable: an existing row is kept (the store compares digests).
INSERT INTO blueprints (namespace, name, version, digest, source, published_at)
VALUES (:namespace, :name, :version, :digest, :source, :now)
ON CONFLICT (namespace, name, version) DO NOTHING;

-- name: get_blueprint
SELECT * FROM blueprints WHERE namespace = :namespace AND name = :name AND version = :version;

-- name: blueprint_versions
-- Every version of one blueprint; the store picks the latest by semantic version.
SELECT * FROM blueprints WHERE namespace = :namespace AND name = :name;

-- name: list_blueprints
SELECT * FROM blueprints WHERE (:namespace IS NULL OR namespace = :namespace)
ORDER BY namespace, name;

-- name: insert_event
INSERT INTO events (type, source, published_at, envelope)
VALUES (:type, :source, :now, :envelope)
RETURNING id;

-- name: read_events
SELECT id, published_at, envelope FROM events
WHERE id > :after_id AND published_at >= :since
ORDER BY id
LIMIT :limit;

-- name: insert_listener
-- A run that listens again keeps its first "since": no event in between is missed.
INSERT INTO event_listeners (run_id, since) VALUES (:run_id, :now)
ON CONFLICT (run_id) DO NOTHING;

-- name: delete_listener
DELETE FROM event_listeners WHERE run_id = :run_id;

-- name: listening_runs
SELECT run_id FROM event_listeners ORDER BY since, run_id;

-- name: resident_cancels
SELECT run_id FROM runs
WHERE cancel_requested = 1 AND run_id IN (SELECT value FROM json_each(:run_ids));

-- name: resident_signals
SELECT DISTINCT run_id, name FROM signals
WHERE consumed_seq IS NULL AND run_id IN (SELECT value FROM json_each(:run_ids));

-- name: resident_children
SELECT * FROM journal
WHERE status != 'waiting' AND child_run_id IS NOT NULL
  AND (run_id, seq) IN (SELECT r.value, s.value FROM json_each(:runs) r
                        JOIN json_each(:seqs) s ON s.key = r.key);

-- name: lock_run
-- SQLite has one writer: a plain read sees what the write transaction locks.
SELECT status FROM runs WHERE run_id = :run_id;

-- name: lock_own_run
SELECT cancel_requested FROM runs
WHERE run_id = :run_id AND owner = :owner AND lease_epoch = :epoch;

-- name: lock_events
-- SQLite has one writer: event ids are committed in order anyway.
SELECT 1;

-- name: data_version
-- Changes when another connection commits (not this one's own commits).
PRAGMA data_version;

-- name: run_statuses
SELECT run_id, status FROM runs WHERE run_id IN (SELECT value FROM json_each(:run_ids));

-- name: any_runnable
-- What claim_runs would find, as a plain read: for idle workers' re-looks.
SELECT EXISTS (
    SELECT 1 FROM runs
    WHERE (status = 'pending' OR (status = 'waiting' AND wake_at <= :now)
           OR (status = 'running' AND lease_expires_at < :lease_now))
      AND (workflow IN (SELECT value FROM json_each(:workflows))
           OR EXISTS (SELECT 1 FROM json_each(:families) f
                      WHERE substr(workflow, 1, length(f.value)) = f.value))
      AND queue IN (SELECT value FROM json_each(:queues))
      AND (requires IS NULL OR NOT EXISTS (
           SELECT 1 FROM json_each(requires) r
           WHERE r.value NOT IN (SELECT value FROM json_each(:capabilities))))
      AND paused = 0
      AND queue NOT IN (SELECT name FROM pauses WHERE scope = 'queue')
      AND workflow NOT IN (SELECT name FROM pauses WHERE scope = 'workflow')
) AS found;
