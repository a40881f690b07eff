-- When the service worker showed each delivery (see the SQLite migration).
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS shown_ms BIGINT;
