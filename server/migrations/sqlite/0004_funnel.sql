-- The opt-in funnel: which prompt (and variant) won each subscription, so
-- deliveries, clicks and retention are attributed to it; conversion names;
-- synthetic (simulated) events kept apart from real ones.
ALTER TABLE subscriptions ADD COLUMN anon_id TEXT;
ALTER TABLE subscriptions ADD COLUMN prompt TEXT;
ALTER TABLE subscriptions ADD COLUMN variant TEXT;
ALTER TABLE events ADD COLUMN name TEXT;
ALTER TABLE events ADD COLUMN synthetic INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS events_by_time ON events(synthetic, at_ms);
CREATE INDEX IF NOT EXISTS events_by_anon ON events(anon_id, at_ms);
