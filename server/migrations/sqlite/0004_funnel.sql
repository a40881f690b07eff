-- The opt-in funnel: which prompt (and variant) won each subscription, so
-- deliveries, clicks and retention are attributed to it; conversion names;
-- synthetic (simulated) events kept apart from real ones.
ALTER TABLE subscriptions ADD COLUMN anon_id TEXT;
ALTER TABLE subscriptions ADD COLUMN prompt TEXT;
ALTER TABLE subscriptions ADD COLUMN variant TEXT;
-- Deliveries copy their subscription's attribution when enqueued: the
-- outbox itself is the record of notification_delivered (no extra write per
-- push), and it survives the subscription's deletion.
ALTER TABLE deliveries ADD COLUMN anon_id TEXT;
ALTER TABLE deliveries ADD COLUMN prompt TEXT;
ALTER TABLE deliveries ADD COLUMN variant TEXT;
ALTER TABLE events ADD COLUMN name TEXT;
ALTER TABLE events ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;
-- Covering indexes for GET /v1/stats: grouped counts read the first in
-- order (no table lookups), retention joins a device's events by the second.
-- Over 1M events they took the stats from ~11 s to ~2 s on SQLite.
DROP INDEX IF EXISTS events_by_prompt;
CREATE INDEX IF NOT EXISTS events_funnel ON events(synthetic, type, prompt, variant, anon_id, at_ms);
CREATE INDEX IF NOT EXISTS events_by_anon ON events(anon_id, synthetic, type, at_ms);
