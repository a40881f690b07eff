-- Personalised notifications (POST /v1/notify with {user.*} / {data.*} copy,
-- or a batch): each delivery's own rendered payload (NULL: the
-- notification's), and how many recipients' payloads were too large to
-- send (their deliveries end `too_large`, never sent, never truncated).
ALTER TABLE deliveries ADD COLUMN payload TEXT;
ALTER TABLE notifications ADD COLUMN too_large INTEGER NOT NULL DEFAULT 0;
