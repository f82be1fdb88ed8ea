-- Blueprints: published workflow documents (immutable per version), and the event bus
-- that blueprint runs listen on.
CREATE TABLE blueprints (
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    digest        TEXT NOT NULL,
    source        TEXT NOT NULL,
    published_at  REAL NOT NULL,
    PRIMARY KEY (namespace, name, version)
);
-- AUTOINCREMENT: an id is never handed out twice, so "events after id N" stays exact
-- even after old events are deleted.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    type          TEXT NOT NULL,
    source        TEXT NOT NULL,
    published_at  REAL NOT NULL,
    envelope      TEXT NOT NULL
);
CREATE INDEX events_published ON events (published_at);
CREATE TABLE event_listeners (
    run_id  TEXT PRIMARY KEY,
    since   REAL NOT NULL
);
