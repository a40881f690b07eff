-- Personalised notifications (see the SQLite migration of the same number).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS payload TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS too_large BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS push_variant TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS variants TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS holdout BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS conversion_event TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS conversion_within_ms BIGINT;
