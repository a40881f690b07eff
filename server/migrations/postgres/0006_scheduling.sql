-- Scheduled and cancelled notifications (see the SQLite migration of the same number).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS scheduled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS defaulted_time_zone BIGINT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS cancelled_ms BIGINT;
