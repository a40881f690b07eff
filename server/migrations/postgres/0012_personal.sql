-- Personalised notifications (see the SQLite migration of the same number).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS payload TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS too_large BIGINT NOT NULL DEFAULT 0;
