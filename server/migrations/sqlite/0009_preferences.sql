-- What people turned off (the preference centre, admin preferences): per
-- subject — a user (`user:{id}`, all their devices) or a device
-- (`device:{subscription id}`) — the categories muted (a JSON array of
-- names) and a pause of everything not exempt until `paused_until_ms`
-- (9223372036854775807: until turned back on). Checked when a worker claims.
CREATE TABLE IF NOT EXISTS preferences (
    subject          TEXT    PRIMARY KEY,
    muted            TEXT    NOT NULL,
    paused_until_ms  INTEGER,
    updated_ms       INTEGER NOT NULL
);
