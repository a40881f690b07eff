-- The delivery policy (caps, quiet hours, categories, digests): each
-- notification's category, and when each delivery was let through — the
-- ledger the caps count (NULL until then, and again when it did not arrive).
-- Statuses gain `held` (waiting for its window), `capped` (dropped by the
-- policy) and `collapsed` (merged into a later push of the same topic).
ALTER TABLE notifications ADD COLUMN category TEXT;
ALTER TABLE deliveries ADD COLUMN sent_ms INTEGER;
CREATE INDEX IF NOT EXISTS deliveries_sent ON deliveries(subscription_id, sent_ms) WHERE sent_ms IS NOT NULL;
