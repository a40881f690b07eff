-- The durable outbox: a notification and one delivery row per recipient are
-- written in one transaction before /v1/notify answers 202; workers claim
-- deliveries with a lease, so a crash loses nothing.
ALTER TABLE subscriptions ADD COLUMN expiration_ms INTEGER;

CREATE TABLE IF NOT EXISTS notifications (
    id              TEXT    PRIMARY KEY,
    idempotency_key TEXT    UNIQUE,
    payload         TEXT    NOT NULL,
    ttl             INTEGER NOT NULL,
    urgency         TEXT,
    topic           TEXT,
    recipients      INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    notification_id TEXT    NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    subscription_id INTEGER REFERENCES subscriptions(id) ON DELETE SET NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    last_code       INTEGER,
    clicked_ms      INTEGER,
    dismissed_ms    INTEGER,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX IF NOT EXISTS deliveries_by_notification ON deliveries(notification_id, status);
