-- The prompt funnel and notification events, deduplicated by id. No IP
-- address or user agent is stored.
CREATE TABLE IF NOT EXISTS events (
    id          TEXT    PRIMARY KEY,
    type        TEXT    NOT NULL,
    prompt      TEXT,
    variant     TEXT,
    trigger_name TEXT,
    anon_id     TEXT,
    delivery    TEXT,
    action      TEXT,
    at_ms       INTEGER NOT NULL,
    received_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_prompt ON events(prompt, variant, type, at_ms);
