-- Failure handling: attempt history and heartbeat progress of steps, pauses, redrives,
-- children that outlive their parent, run deadlines.
ALTER TABLE journal ADD COLUMN attempt_log text;
ALTER TABLE journal ADD COLUMN progress text;
ALTER TABLE runs ADD COLUMN paused boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN redrives integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN detached boolean NOT NULL DEFAULT false;
ALTER TABLE runs ADD COLUMN deadline_at double precision;
CREATE TABLE pauses (
    scope       text NOT NULL,
    name        text NOT NULL,
    created_at  double precision NOT NULL,
    PRIMARY KEY (scope, name)
);
