-- The signals a run's workflow declares (a JSON object: name -> JSON Schema of the
-- payload, {} for any JSON), so that a client without the workflow's code can refuse a
-- name the run will never take and check a payload before it is buffered. NULL: the
-- workflow declares none, and any name may be sent.
ALTER TABLE runs ADD COLUMN signals TEXT;
