-- Journeys (behaviour-triggered follow-ups): definitions by version, each
-- user's instance of one, the sends they made, and the event cursor.
--
-- A definition is never changed in place: PUT adds a version and makes it
-- current; running instances finish on the version they entered with.
CREATE TABLE IF NOT EXISTS journeys (
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT    NOT NULL,
    current     INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (id, version)
);
-- One row per user (per key, when keyed) per entry. `id` is derived from
-- what caused the entry, so replaying the cause enters nobody twice.
-- `due_ms` is NULL once ended; `lease_until_ms` is the claim of the server
-- running its next step (the deliveries' lease machinery).
CREATE TABLE IF NOT EXISTS journey_instances (
    id              TEXT    PRIMARY KEY,
    journey_id      TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    user_id         TEXT    NOT NULL,
    instance_key    TEXT    NOT NULL,
    entered_ms      INTEGER NOT NULL,
    holdout         INTEGER NOT NULL,
    event           TEXT    NOT NULL,
    step            INTEGER NOT NULL,
    due_ms          INTEGER,
    ending          TEXT,
    ended_by        TEXT,
    ended_ms        INTEGER,
    converted_ms    INTEGER,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journey_instances_due ON journey_instances(due_ms);
CREATE INDEX IF NOT EXISTS journey_instances_by_user ON journey_instances(user_id, journey_id);
-- Every send step an instance reached: the notification it enqueued (NULL
-- for the holdout, which is counted but sent nothing) or why it could not.
CREATE TABLE IF NOT EXISTS journey_sends (
    instance_id     TEXT    NOT NULL,
    step            INTEGER NOT NULL,
    journey_id      TEXT    NOT NULL,
    notification_id TEXT,
    withheld        INTEGER NOT NULL,
    error           TEXT,
    at_ms           INTEGER NOT NULL,
    PRIMARY KEY (instance_id, step)
);
CREATE INDEX IF NOT EXISTS journey_sends_by_journey ON journey_sends(journey_id);
-- How far the journey runner has read user_events (by seq), and which
-- server holds the reading for now.
CREATE TABLE IF NOT EXISTS journey_cursor (
    name            TEXT    PRIMARY KEY,
    seq             INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL
);
INSERT INTO journey_cursor (name, seq, lease_until_ms) VALUES ('events', 0, 0) ON CONFLICT DO NOTHING;
