-- When the service worker showed each delivery (its `notification_shown`
-- report), for the dashboard's per-notification funnel: queued, delivered,
-- shown, clicked, converted.
ALTER TABLE deliveries ADD COLUMN shown_ms INTEGER;
