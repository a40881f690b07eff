-- The delivery policy (see the SQLite migration of the same number).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS category TEXT;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS sent_ms BIGINT;
CREATE INDEX IF NOT EXISTS deliveries_sent ON deliveries(subscription_id, sent_ms) WHERE sent_ms IS NOT NULL;
