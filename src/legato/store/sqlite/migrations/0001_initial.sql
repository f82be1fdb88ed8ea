-- Legato schema, version 1: runs, their journals, buffered signals, workers.
CREATE TABLE runs (
    run_id            TEXT PRIMARY KEY,
    workflow          TEXT NOT NULL,
    version           TEXT,
    status            TEXT NOT NULL,
    input             TEXT,
    output            TEXT,
    error             TEXT,
    parent_run_id     TEXT,
    parent_seq        TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    started_at        REAL,
    ended_at          REAL,
    wake_at           REAL,
    wait_signals      TEXT,
    owner             TEXT,
    lease_epoch       INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  REAL,
    cancel_requested  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_pending ON runs (created_at) WHERE status = 'pending';
CREATE INDEX runs_timers ON runs (wake_at) WHERE status = 'waiting';
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_owner ON runs (owner) WHERE status = 'running';
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_parent ON runs (parent_run_id);

CREATE TABLE journal (
    run_id        TEXT NOT NULL,
    seq           TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    input         TEXT,
    output        TEXT,
    error         TEXT,
    started_at    REAL,
    ended_at      REAL,
    wake_at       REAL,
    child_run_id  TEXT,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE signals (
    signal_id     INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    name          TEXT NOT NULL,
    payload       TEXT,
    created_at    REAL NOT NULL,
    consumed_seq  TEXT
);
CREATE INDEX signals_unconsumed ON signals (run_id, name) WHERE consumed_seq IS NULL;

CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL
);
