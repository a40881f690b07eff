-- Named segments (PUT /v1/segments/{id}): a condition over user traits and
-- topics, as the JSON the API took (checked by askwell::segment before it
-- is written), sent to with POST /v1/notify `to: { segment }`.
CREATE TABLE IF NOT EXISTS segments (
    id          TEXT    PRIMARY KEY,
    definition  TEXT    NOT NULL,
    updated_ms  INTEGER NOT NULL
);
