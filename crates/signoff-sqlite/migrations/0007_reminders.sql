-- When a pending request's reminder is due (NULL: none, or given, or the
-- request left pending). The sweeper finds due reminders by this index.
ALTER TABLE requests ADD COLUMN remind_at INTEGER;
CREATE INDEX requests_remind_due ON requests (remind_at) WHERE remind_at IS NOT NULL;
