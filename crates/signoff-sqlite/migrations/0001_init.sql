-- Requests, their audit trail and idempotency keys.
-- Timestamps in `requests` are microseconds since the Unix epoch (UTC);
-- the audit trail keeps RFC 3339 text, the exact form that is hashed.

CREATE TABLE requests (
    id               TEXT PRIMARY KEY,   -- UUIDv7, so ORDER BY id is creation order
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    proposed_action  TEXT NOT NULL,      -- JSON object
    requester        TEXT NOT NULL,
    labels           TEXT NOT NULL,      -- JSON object of strings
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','expired','cancelled')),
    reviewer         TEXT,
    decided_at       INTEGER,
    comment          TEXT,
    rejection_reason TEXT
);

-- The inbox: one status, newest first.
CREATE INDEX requests_by_status ON requests (status, id DESC);
-- The sweeper: the next pending request to expire.
CREATE INDEX requests_pending_expiry ON requests (expires_at) WHERE status = 'pending';

CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    event      TEXT NOT NULL,
    request_id TEXT NOT NULL,
    title      TEXT NOT NULL,
    actor      TEXT,
    reason     TEXT,
    comment    TEXT,
    action     TEXT,                     -- canonical JSON
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE INDEX audit_by_request ON audit_log (request_id, seq);

-- The last entry of the chain, written in the same transaction as the
-- entries: removing entries from the end of the trail shows against it.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL,
    hash     TEXT NOT NULL
);

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    request_id  TEXT NOT NULL
);
