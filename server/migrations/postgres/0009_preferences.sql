-- What people turned off (see the SQLite migration of the same number).
CREATE TABLE IF NOT EXISTS preferences (
    subject          TEXT    PRIMARY KEY,
    muted            TEXT    NOT NULL,
    paused_until_ms  BIGINT,
    updated_ms       BIGINT  NOT NULL
);
