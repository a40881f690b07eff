-- Muted topics (see the SQLite migration of the same number).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS audience_topic TEXT;
ALTER TABLE preferences ADD COLUMN IF NOT EXISTS muted_topics TEXT NOT NULL DEFAULT '[]';
