-- Blueprints: published workflow documents (immutable per version), and the event bus
-- that blueprint runs listen on.
CREATE TABLE blueprints (
    namespace     text NOT NULL,
    name          text NOT NULL,
    version       text NOT NULL,
    digest        text NOT NULL,
    source        text NOT NULL,
    published_at  double precision NOT NULL,
    PRIMARY KEY (namespace, name, version)
);
CREATE TABLE events (
    id            bigserial PRIMARY KEY,
    type          text NOT NULL,
    source        text NOT NULL,
    published_at  double precision NOT NULL,
    envelope      text NOT NULL
);
CREATE INDEX events_published ON events (published_at);
CREATE TABLE event_listeners (
    run_id  text PRIMARY KEY,
    since   double precision NOT NULL
);
