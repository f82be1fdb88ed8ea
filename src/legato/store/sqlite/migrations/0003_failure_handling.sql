-- Failure handling: attempt history and heartbeat progress of steps, pauses, redrives,
-- children that outlive their parent, run deadlines.
ALTER TABLE journal ADD COLUMN attempt_log TEXT;
ALTER TABLE journal ADD COLUMN progress TEXT;
ALTER TABLE runs ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN redrives INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN detached INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN deadline_at REAL;
CREATE TABLE pauses (
    scope       TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  REAL NOT NULL,
    PRIMARY KEY (scope, name)
);
