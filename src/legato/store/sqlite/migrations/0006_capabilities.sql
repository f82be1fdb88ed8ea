-- Apps and capabilities, so that workers of different apps can share a database: what
-- each worker can run, published with its heartbeat (JSON arrays of names), and what a
-- blueprint run needs of the worker that claims it (a JSON array of the Python functions
-- and task kinds its document calls; NULL for nothing).
ALTER TABLE workers ADD COLUMN app TEXT;
ALTER TABLE workers ADD COLUMN queues TEXT;
ALTER TABLE workers ADD COLUMN workflows TEXT;
ALTER TABLE workers ADD COLUMN capabilities TEXT;
ALTER TABLE runs ADD COLUMN requires TEXT;
