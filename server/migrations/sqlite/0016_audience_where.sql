-- The condition of a push to a segment (`to: { where }`, or a named
-- segment's definition at send time), as JSON: each delivery is judged
-- against it again when claimed, so a device that left the segment since
-- (left a topic it names, a trait changed) ends `muted`, not sent.
ALTER TABLE notifications ADD COLUMN audience_where TEXT;
