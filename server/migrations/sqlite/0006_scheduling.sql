-- Scheduled and cancelled notifications (POST /v1/notify `deliver`,
-- DELETE /v1/notifications/{id}). A delivery's due time is its existing
-- `next_attempt_ms`, so the claim query and leases are unchanged; its new
-- status `cancelled` is text like the others (no schema change).
--
-- `scheduled` and `defaulted_time_zone` are the 202's counts, kept so that a
-- repeated idempotency key answers the same; `cancelled_ms` marks a
-- cancelled notification, so a delivery a worker held while it was
-- cancelled is cancelled when it is next claimed instead of being sent.
ALTER TABLE notifications ADD COLUMN scheduled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN defaulted_time_zone INTEGER NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN cancelled_ms INTEGER;
