-- Named segments (see the SQLite migration of the same number).
CREATE TABLE IF NOT EXISTS segments (
    id          TEXT    PRIMARY KEY,
    definition  TEXT    NOT NULL,
    updated_ms  BIGINT  NOT NULL
);
