-- What the app's backend tells the server about its users (PUT /v1/users/{id},
-- POST /v1/track), for journeys: traits, events and time zones.
--
-- `traits` and `properties` are JSON objects of flat scalars (validated by
-- server/src/users.rs before they are written).
CREATE TABLE IF NOT EXISTS users (
    id          TEXT    PRIMARY KEY,
    traits      TEXT    NOT NULL,
    time_zone   TEXT,
    updated_ms  INTEGER NOT NULL
);
-- AUTOINCREMENT: a seq is never handed out twice, even after the newest rows
-- are erased (a plain INTEGER PRIMARY KEY reuses MAX + 1), so a journey
-- engine reading past its last seq never skips an event.
CREATE TABLE IF NOT EXISTS user_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    event_key   TEXT,
    at_ms       INTEGER NOT NULL,
    properties  TEXT    NOT NULL,
    dedup_id    TEXT    UNIQUE,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS user_events_by_name ON user_events(user_id, name, at_ms);
-- The device's own zone (`Intl.DateTimeFormat().resolvedOptions().timeZone`),
-- NULL when the page sent none or one the bundled tz database does not know.
ALTER TABLE subscriptions ADD COLUMN time_zone TEXT;
