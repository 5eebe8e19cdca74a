-- The requests table rebuilt for the write path, with the same columns in the
-- same order and the same rows:
-- * the status CHECK is a chain of comparisons: SQLite compiles an IN list
--   of more than two values into a temporary table that every INSERT and
--   UPDATE built and dropped again (OpenEphemeral in EXPLAIN);
-- * requests_by_status is ascending: new ids are the largest, so they append
--   at the end of their status instead of splitting pages at its start.
--   Newest-first pages read it backwards, which costs the same.
CREATE TABLE requests_rebuilt (
    id               TEXT PRIMARY KEY,   -- UUIDv7, so ORDER BY id is creation order
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    proposed_action  TEXT NOT NULL,      -- JSON object
    requester        TEXT NOT NULL,
    labels           TEXT NOT NULL,      -- JSON object of strings
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status = 'pending' OR status = 'approved'
                         OR status = 'rejected' OR status = 'expired' OR status = 'cancelled'),
    reviewer         TEXT,
    decided_at       INTEGER,
    comment          TEXT,
    rejection_reason TEXT,
    edited_action    TEXT,
    action_hash      TEXT,
    plan             TEXT,
    approvals        TEXT,
    stage            TEXT,
    remind_at        INTEGER
);
INSERT INTO requests_rebuilt SELECT * FROM requests ORDER BY id;
DROP TABLE requests;
ALTER TABLE requests_rebuilt RENAME TO requests;
CREATE INDEX requests_by_status ON requests (status, id);
CREATE INDEX requests_pending_expiry ON requests (expires_at) WHERE status = 'pending';
CREATE INDEX requests_remind_due ON requests (remind_at) WHERE remind_at IS NOT NULL;
