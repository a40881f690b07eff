-- Push A/B tests with a rollout (see the SQLite migration of the same number).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS rollout TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS rollout_decide_ms BIGINT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS rollout_decision TEXT;
CREATE INDEX IF NOT EXISTS notifications_rollout_due ON notifications (rollout_decide_ms)
    WHERE rollout_decide_ms IS NOT NULL AND rollout_decision IS NULL;
