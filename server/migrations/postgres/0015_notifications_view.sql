-- The dashboard's Notifications view (see the SQLite migration).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS shown_ms BIGINT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS journey_send BIGINT NOT NULL DEFAULT 0;
UPDATE notifications SET journey_send = 1 WHERE idempotency_key LIKE 'journey:%';
CREATE INDEX IF NOT EXISTS notifications_listed ON notifications (journey_send, created_ms);
