-- Topic labels (see the SQLite migration of the same number).
ALTER TABLE subscription_topics ADD COLUMN IF NOT EXISTS label TEXT;
