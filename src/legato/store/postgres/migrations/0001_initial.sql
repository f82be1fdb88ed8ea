-- Legato schema, version 1 (PostgreSQL): runs, their journals, buffered signals, workers.
CREATE TABLE runs (
    run_id            text PRIMARY KEY,
    workflow          text NOT NULL,
    version           text,
    status            text NOT NULL,
    input             text,
    output            text,
    error             text,
    parent_run_id     text,
    parent_seq        text,
    created_at        double precision NOT NULL,
    updated_at        double precision NOT NULL,
    started_at        double precision,
    ended_at          double precision,
    wake_at           double precision,
    wait_signals      text,
    owner             text,
    lease_epoch       bigint NOT NULL DEFAULT 0,
    lease_expires_at  double precision,
    cancel_requested  boolean NOT NULL DEFAULT false
);
CREATE INDEX runs_pending ON runs (created_at) WHERE status = 'pending';
CREATE INDEX runs_timers ON runs (wake_at) WHERE status = 'waiting';
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_owner ON runs (owner) WHERE status = 'running';
CREATE INDEX runs_created ON runs (created_at);
CREATE INDEX runs_parent ON runs (parent_run_id);

CREATE TABLE journal (
    position      bigserial,
    run_id        text NOT NULL,
    seq           text NOT NULL,
    kind          text NOT NULL,
    name          text NOT NULL,
    status        text NOT NULL,
    attempts      integer NOT NULL DEFAULT 0,
    input         text,
    output        text,
    error         text,
    started_at    double precision,
    ended_at      double precision,
    wake_at       double precision,
    child_run_id  text,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE signals (
    signal_id     bigserial PRIMARY KEY,
    run_id        text NOT NULL,
    name          text NOT NULL,
    payload       text,
    created_at    double precision NOT NULL,
    consumed_seq  text
);
CREATE INDEX signals_unconsumed ON signals (run_id, name) WHERE consumed_seq IS NULL;

CREATE TABLE workers (
    worker_id     text PRIMARY KEY,
    host          text NOT NULL,
    pid           integer NOT NULL,
    started_at    double precision NOT NULL,
    heartbeat_at  double precision NOT NULL
);
