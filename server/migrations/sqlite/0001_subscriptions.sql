-- Push subscriptions: one row per browser endpoint (RFC 8030), with the
-- RFC 8291 keys needed to encrypt for it.
CREATE TABLE IF NOT EXISTS subscriptions (
    id          INTEGER PRIMARY KEY,
    endpoint    TEXT    NOT NULL UNIQUE,
    p256dh      TEXT    NOT NULL,
    auth        TEXT    NOT NULL,
    user_id     TEXT,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS subscription_topics (
    subscription_id INTEGER NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
    topic           TEXT    NOT NULL,
    PRIMARY KEY (subscription_id, topic)
);
CREATE INDEX IF NOT EXISTS subscription_topics_by_topic ON subscription_topics(topic);
CREATE INDEX IF NOT EXISTS subscriptions_by_user ON subscriptions(user_id);
