-- Every SQL statement the PostgreSQL store runs, by name. Loaded by store.py.
-- Writes on behalf of a worker lock the run row FOR SHARE while checking the lease, so a
-- concurrent takeover (FOR UPDATE) either waits for the write or makes it see the new
-- epoch and write nothing.

-- name: insert_run
INSERT INTO runs (run_id, workflow, version, status, input, parent_run_id, parent_seq,
                  created_at, updated_at, queue, priority, concurrency_key, detached,
                  deadline_at, requires, signals)
VALUES (%(run_id)s, %(workflow)s, %(version)s, 'pending', %(input)s, %(parent_run_id)s,
        %(parent_seq)s, %(now)s, %(now)s, %(queue)s, %(priority)s, %(concurrency_key)s,
        %(detached)s, %(deadline_at)s, %(requires)s, %(signals)s)
ON CONFLICT (run_id) DO NOTHING;

-- name: get_run
SELECT * FROM runs WHERE run_id = %(run_id)s;

-- name: list_runs
-- Keyset pages: after the (created_at, run_id) of the last row seen, so runs inserted
-- meanwhile never shift a page (no duplicates, no gaps).
SELECT * FROM runs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(created_after)s::double precision IS NULL OR created_at >= %(created_after)s)
  AND (%(created_before)s::double precision IS NULL OR created_at < %(created_before)s)
  AND (%(cursor_at)s::double precision IS NULL OR created_at < %(cursor_at)s
       OR (created_at = %(cursor_at)s AND run_id < %(cursor_id)s))
ORDER BY created_at DESC, run_id DESC
LIMIT %(limit)s;

-- name: count_runs
SELECT COUNT(*) AS n FROM runs
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(workflow)s::text IS NULL OR workflow = %(workflow)s)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(created_after)s::double precision IS NULL OR created_at >= %(created_after)s)
  AND (%(created_before)s::double precision IS NULL OR created_at < %(created_before)s);

-- name: get_journal
SELECT * FROM journal WHERE run_id = %(run_id)s ORDER BY position;

-- name: lock_run
SELECT status FROM runs WHERE run_id = %(run_id)s FOR UPDATE;

-- name: insert_signal
INSERT INTO signals (run_id, name, payload, created_at)
VALUES (%(run_id)s, %(name)s, %(payload)s, %(now)s);

-- name: wake_for_signal
UPDATE runs SET status = 'pending', wake_at = NULL, wait_signals = NULL, updated_at = %(now)s
WHERE run_id = %(run_id)s AND status = 'waiting' AND wait_signals::jsonb ? %(name)s;

-- name: request_cancel
UPDATE runs SET cancel_requested = true, updated_at = %(now)s,
       status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END,
       wake_at = CASE WHEN status = 'waiting' THEN NULL ELSE wake_at END
WHERE run_id = %(run_id)s AND status NOT IN ('completed', 'failed', 'cancelled');

-- name: candidates_expired
-- A run is a candidate only if the worker's capabilities hold all the run requires (the
-- Python functions and task kinds a blueprint calls); NULL requires nothing.
SELECT run_id, queue, concurrency_key, started_at, owner FROM runs
WHERE status = 'running' AND lease_expires_at < %(lease_now)s
  AND (workflow = ANY(%(workflows)s)
       OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
  AND queue = ANY(%(queues)s)
  AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
  AND NOT paused
  AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
  AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))
LIMIT %(scan)s
FOR UPDATE SKIP LOCKED;

-- name: candidates_due
SELECT run_id, queue, concurrency_key, started_at FROM runs
WHERE status = 'waiting' AND wake_at <= %(now)s
  AND (workflow = ANY(%(workflows)s)
       OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
  AND queue = ANY(%(queues)s)
  AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
  AND NOT paused
  AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
  AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))
LIMIT %(scan)s
FOR UPDATE SKIP LOCKED;

-- name: candidates_pending
SELECT run_id, queue, concurrency_key, started_at FROM runs
WHERE status = 'pending' AND (workflow = ANY(%(workflows)s)
       OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
  AND queue = ANY(%(queues)s)
  AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
  AND NOT paused
  AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
  AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))
ORDER BY priority DESC, created_at
LIMIT %(scan)s
FOR UPDATE SKIP LOCKED;

-- name: claim_chosen
-- A run still 'running' had an expired lease: its worker died (or stalled) holding it,
-- so this claim is a recovery (the SET sees the row as it was).
UPDATE runs SET status = 'running', owner = %(owner)s, lease_epoch = lease_epoch + 1,
       lease_expires_at = %(lease_until)s, started_at = COALESCE(started_at, %(now)s),
       updated_at = %(now)s, wake_at = NULL, wait_signals = NULL,
       recoveries = recoveries + CASE WHEN status = 'running' THEN 1 ELSE 0 END
WHERE run_id = ANY(%(ids)s)
RETURNING *;

-- name: lock_queue_limits
-- Claims on a limited queue take turns: the last free slot goes to one worker only.
SELECT * FROM queues WHERE name = ANY(%(queues)s) ORDER BY name FOR UPDATE;

-- name: queue_running
SELECT queue, concurrency_key, COUNT(*) AS n FROM runs
WHERE status = 'running' AND lease_expires_at >= %(lease_now)s AND queue = ANY(%(queues)s)
GROUP BY queue, concurrency_key;

-- name: queue_starts
SELECT COUNT(*) AS n FROM runs WHERE queue = %(queue)s AND started_at >= %(since)s;

-- name: upsert_queue
INSERT INTO queues (name, concurrency, key_concurrency, rate_limit, rate_period)
VALUES (%(name)s, %(concurrency)s, %(key_concurrency)s, %(rate_limit)s, %(rate_period)s)
ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
    key_concurrency = excluded.key_concurrency, rate_limit = excluded.rate_limit,
    rate_period = excluded.rate_period;

-- name: list_queues
SELECT * FROM queues ORDER BY name;

-- name: claimed_journals
SELECT * FROM journal WHERE run_id = ANY(%(ids)s) ORDER BY position;

-- name: claimed_signals
SELECT signal_id, run_id, name, payload, created_at FROM signals
WHERE run_id = ANY(%(ids)s) AND consumed_seq IS NULL ORDER BY signal_id;

-- name: check_lease
SELECT 1 FROM runs
WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s
FOR SHARE;

-- name: upsert_entry
-- One statement per journal write: the lease check (row locked FOR SHARE) and the upsert.
-- No row inserted or updated means the lease was lost.
INSERT INTO journal (run_id, seq, kind, name, status, attempts, input, output, error,
                     started_at, ended_at, wake_at, child_run_id, attempt_log, progress)
SELECT %(run_id)s, %(seq)s, %(kind)s, %(name)s, %(status)s, %(attempts)s, %(input)s,
       %(output)s, %(error)s, %(started_at)s, %(ended_at)s, %(wake_at)s, %(child_run_id)s,
       %(attempt_log)s, %(progress)s
WHERE EXISTS (SELECT 1 FROM runs
              WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s
              FOR SHARE)
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
WHERE run_id = %(run_id)s AND consumed_seq IS NULL AND name = ANY(%(names)s)
ORDER BY signal_id LIMIT 1
FOR UPDATE;

-- name: consume_signal
UPDATE signals SET consumed_seq = %(seq)s WHERE signal_id = %(signal_id)s;

-- name: get_entry
SELECT * FROM journal WHERE run_id = %(run_id)s AND seq = %(seq)s;

-- name: signal_waiting
SELECT 1 FROM signals
WHERE run_id = %(run_id)s AND consumed_seq IS NULL AND name = ANY(%(names)s)
LIMIT 1;

-- name: child_done
SELECT 1 FROM journal
WHERE run_id = %(run_id)s AND status != 'waiting' AND seq = ANY(%(seqs)s)
LIMIT 1;

-- name: lock_own_run
SELECT cancel_requested FROM runs
WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s
FOR UPDATE;

-- name: suspend_run
UPDATE runs SET status = %(status)s, wake_at = %(wake_at)s, wait_signals = %(wait_signals)s,
       owner = NULL, lease_expires_at = NULL, updated_at = %(now)s
WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s;

-- name: finish_run
UPDATE runs SET status = %(status)s, output = %(output)s, error = %(error)s,
       ended_at = %(now)s, updated_at = %(now)s, owner = NULL, lease_expires_at = NULL,
       wake_at = NULL, wait_signals = NULL
WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s
RETURNING parent_run_id, parent_seq;

-- name: cancel_children
-- A parent that ends takes its attached children with it (they cancel at their next await).
UPDATE runs SET cancel_requested = true, updated_at = %(now)s,
       status = CASE WHEN status = 'waiting' THEN 'pending' ELSE status END,
       wake_at = CASE WHEN status = 'waiting' THEN NULL ELSE wake_at END
WHERE parent_run_id = %(run_id)s AND NOT detached
  AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING run_id;

-- name: resolve_child_entry
UPDATE journal SET status = %(status)s, output = %(output)s, error = %(error)s,
       ended_at = %(now)s
WHERE run_id = %(parent_run_id)s AND seq = %(parent_seq)s AND status = 'waiting'
  AND child_run_id = %(child_run_id)s;

-- name: wake_run
UPDATE runs SET status = 'pending', wake_at = NULL, wait_signals = NULL, updated_at = %(now)s
WHERE run_id = %(run_id)s AND status = 'waiting';

-- name: release_run
UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL,
       updated_at = %(now)s
WHERE run_id = %(run_id)s AND owner = %(owner)s AND lease_epoch = %(epoch)s;

-- name: probe_insert
-- A row nobody reads (it is deleted in the same transaction): see workers.probe_write.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, workflows)
VALUES (%(worker_id)s, '', 0, %(now)s, %(now)s, %(padding)s);

-- name: upsert_worker
-- What the worker can run is written with every beat: it is what the worker claims by.
INSERT INTO workers (worker_id, host, pid, started_at, heartbeat_at, app, queues, workflows,
                     capabilities)
VALUES (%(worker_id)s, %(host)s, %(pid)s, %(started_at)s, %(heartbeat_at)s, %(app)s,
        %(queues)s, %(workflows)s, %(capabilities)s)
ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at,
    app = excluded.app, queues = excluded.queues, workflows = excluded.workflows,
    capabilities = excluded.capabilities;

-- name: renew_leases
UPDATE runs SET lease_expires_at = %(lease_until)s
WHERE owner = %(owner)s AND status = 'running' AND run_id = ANY(%(ids)s);

-- name: owned_runs
SELECT run_id, lease_epoch, cancel_requested,
       paused OR EXISTS (SELECT 1 FROM pauses p WHERE
           (p.scope = 'queue' AND p.name = runs.queue)
           OR (p.scope = 'workflow' AND p.name = runs.workflow)) AS paused
FROM runs WHERE owner = %(owner)s AND status = 'running';

-- name: delete_worker
DELETE FROM workers WHERE worker_id = %(worker_id)s;

-- name: list_workers
SELECT w.*, (SELECT COUNT(*) FROM runs r WHERE r.owner = w.worker_id AND r.status = 'running')
       AS runs
FROM workers w ORDER BY heartbeat_at DESC;

-- name: expire_leases
UPDATE runs SET lease_expires_at = 0 WHERE owner = %(owner)s AND status = 'running';

-- name: next_wake
-- Only runs this worker could claim: a due timer of a run it cannot take must not
-- keep it from sleeping (the same filters as the candidates).
SELECT (SELECT MIN(wake_at) FROM runs WHERE status = 'waiting'
  AND (workflow = ANY(%(workflows)s)
       OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
  AND queue = ANY(%(queues)s)
  AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
  AND NOT paused
  AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
  AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))) AS timer,
       (SELECT MIN(lease_expires_at) FROM runs WHERE status = 'running'
  AND (workflow = ANY(%(workflows)s)
       OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
  AND queue = ANY(%(queues)s)
  AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
  AND NOT paused
  AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
  AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))) AS lease;

-- name: insert_pause
INSERT INTO pauses (scope, name, created_at) VALUES (%(scope)s, %(name)s, %(now)s)
ON CONFLICT (scope, name) DO NOTHING;

-- name: delete_pause
DELETE FROM pauses WHERE scope = %(scope)s AND name = %(name)s;

-- name: list_pauses
SELECT scope, name, created_at FROM pauses ORDER BY scope, name;

-- name: set_run_paused
UPDATE runs SET paused = %(paused)s, updated_at = %(now)s WHERE run_id = %(run_id)s;

-- name: delete_entry
DELETE FROM journal WHERE run_id = %(run_id)s AND seq = %(seq)s;

-- name: unconsume_signal
UPDATE signals SET consumed_seq = NULL
WHERE run_id = %(run_id)s AND consumed_seq = %(seq)s;

-- name: redrive_run
UPDATE runs SET status = 'pending', output = NULL, error = NULL, ended_at = NULL,
       cancel_requested = false, wake_at = NULL, wait_signals = NULL, owner = NULL,
       lease_expires_at = NULL, redrives = redrives + 1, recoveries = 0,
       updated_at = %(now)s,
       deadline_at = CASE WHEN deadline_at <= %(now)s THEN NULL ELSE deadline_at END
WHERE run_id = %(run_id)s AND status = %(status)s;

-- name: insert_blueprint
-- Published versions are immutable: an existing row is kept (the store compares digests).
INSERT INTO blueprints (namespace, name, version, digest, source, published_at)
VALUES (%(namespace)s, %(name)s, %(version)s, %(digest)s, %(source)s, %(now)s)
ON CONFLICT (namespace, name, version) DO NOTHING;

-- name: get_blueprint
SELECT * FROM blueprints
WHERE namespace = %(namespace)s AND name = %(name)s AND version = %(version)s;

-- name: blueprint_versions
-- Every version of one blueprint; the store picks the latest by semantic version.
SELECT * FROM blueprints WHERE namespace = %(namespace)s AND name = %(name)s;

-- name: list_blueprints
SELECT * FROM blueprints WHERE (%(namespace)s::text IS NULL OR namespace = %(namespace)s)
ORDER BY namespace, name;

-- name: lock_events
-- Appends take turns until they commit, so event ids become visible in increasing order
-- and a reader that resumes "after id N" never skips an event committed late.
SELECT pg_advisory_xact_lock(hashtext('legato-events/' || current_schema()));

-- name: insert_event
INSERT INTO events (type, source, published_at, envelope)
VALUES (%(type)s, %(source)s, %(now)s, %(envelope)s)
RETURNING id;

-- name: read_events
SELECT id, published_at, envelope FROM events
WHERE id > %(after_id)s AND published_at >= %(since)s
ORDER BY id
LIMIT %(limit)s;

-- name: insert_listener
-- A run that listens again keeps its first "since": no event in between is missed.
INSERT INTO event_listeners (run_id, since) VALUES (%(run_id)s, %(now)s)
ON CONFLICT (run_id) DO NOTHING;

-- name: delete_listener
DELETE FROM event_listeners WHERE run_id = %(run_id)s;

-- name: listening_runs
SELECT run_id FROM event_listeners ORDER BY since, run_id;

-- name: resident_cancels
SELECT run_id FROM runs WHERE cancel_requested AND run_id = ANY(%(run_ids)s);

-- name: resident_signals
SELECT DISTINCT run_id, name FROM signals
WHERE consumed_seq IS NULL AND run_id = ANY(%(run_ids)s);

-- name: resident_children
SELECT * FROM journal
WHERE status != 'waiting' AND child_run_id IS NOT NULL
  AND (run_id, seq) IN (SELECT * FROM unnest(%(runs)s::text[], %(seqs)s::text[]));

-- name: notify
-- Every notice of a write group in one statement: delivered when the group commits.
SELECT pg_notify(%(channel)s, p) FROM unnest(%(payloads)s::text[]) AS p;

-- name: run_statuses
SELECT run_id, status FROM runs WHERE run_id = ANY(%(run_ids)s);

-- name: any_runnable
-- What claim_runs would find, as a plain read (no row locks): for idle workers' re-looks.
SELECT EXISTS (
    SELECT 1 FROM runs
    WHERE (status = 'pending' OR (status = 'waiting' AND wake_at <= %(now)s)
           OR (status = 'running' AND lease_expires_at < %(lease_now)s))
      AND (workflow = ANY(%(workflows)s)
           OR EXISTS (SELECT 1 FROM unnest(%(families)s::text[]) f WHERE starts_with(workflow, f)))
      AND queue = ANY(%(queues)s)
      AND (requires IS NULL OR requires::jsonb <@ to_jsonb(%(capabilities)s::text[]))
      AND NOT paused
      AND queue <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'queue'))
      AND workflow <> ALL(ARRAY(SELECT name FROM pauses WHERE scope = 'workflow'))
) AS found;
