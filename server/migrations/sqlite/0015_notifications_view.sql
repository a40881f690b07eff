-- The dashboard's Notifications view.
-- When the service worker showed each delivery (its `notification_shown`
-- report), for the per-notification funnel: queued, delivered, shown,
-- clicked, converted.
ALTER TABLE deliveries ADD COLUMN shown_ms INTEGER;
-- Whether a notification is a journey's send (1), which the view leaves to
-- the Journeys panel; indexed with the time, so listing the newest sends of
-- POST /v1/notify reads only those, however many journey sends there are.
ALTER TABLE notifications ADD COLUMN journey_send INTEGER NOT NULL DEFAULT 0;
UPDATE notifications SET journey_send = 1 WHERE idempotency_key LIKE 'journey:%';
CREATE INDEX notifications_listed ON notifications (journey_send, created_ms);
