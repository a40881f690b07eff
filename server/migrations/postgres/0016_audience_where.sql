-- The condition of a push to a segment (see the SQLite migration of the
-- same number).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS audience_where TEXT;
