-- One tap from the notification and the preference centre mute a topic, not
-- only a category: each notification keeps the topic it was sent to
-- (`to: { topic }`; NULL for a user or everyone), and each subject's
-- preferences the topics it muted (a JSON array of names). Checked when a
-- worker claims, like the muted categories.
ALTER TABLE notifications ADD COLUMN audience_topic TEXT;
ALTER TABLE preferences ADD COLUMN muted_topics TEXT NOT NULL DEFAULT '[]';
