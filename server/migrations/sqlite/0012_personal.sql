-- Personalised notifications (POST /v1/notify with {user.*} / {data.*} copy,
-- or a batch): each delivery's own rendered payload (NULL: the
-- notification's), and how many recipients' payloads were too large to
-- send (their deliveries end `too_large`, never sent, never truncated).
ALTER TABLE deliveries ADD COLUMN payload TEXT;
ALTER TABLE notifications ADD COLUMN too_large INTEGER NOT NULL DEFAULT 0;
-- Push A/B tests (notification.variants, notification.holdout): the variant
-- each delivery got (`holdout` for one withheld), the variants' ids in the
-- request's order (JSON; the first is the baseline), and how many were
-- withheld.
ALTER TABLE deliveries ADD COLUMN push_variant TEXT;
ALTER TABLE notifications ADD COLUMN variants TEXT;
ALTER TABLE notifications ADD COLUMN holdout INTEGER NOT NULL DEFAULT 0;
-- What counts as a conversion for it (POST /v1/notify `conversion`): a user
-- event's name, within this long of the push (or of its click).
ALTER TABLE notifications ADD COLUMN conversion_event TEXT;
ALTER TABLE notifications ADD COLUMN conversion_within_ms INTEGER;
