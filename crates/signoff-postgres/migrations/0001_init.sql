-- Signoff on PostgreSQL: the same tables as the SQLite backend, created at
-- once. Timestamps in requests, runs and tokens are microseconds since the
-- Unix epoch (UTC); the audit trail keeps RFC 3339 text, the exact form that
-- is hashed. JSON is kept as the text serde_json wrote, so it reads back
-- byte for byte.

CREATE TABLE requests (
    id               UUID PRIMARY KEY,   -- UUIDv7, so ORDER BY id is creation order
    title            TEXT NOT NULL,
    description      TEXT NOT NULL,
    proposed_action  TEXT NOT NULL,
    requester        TEXT NOT NULL,
    labels           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending','approved','rejected','expired','cancelled')),
    reviewer         TEXT,
    decided_at       BIGINT,
    comment          TEXT,
    rejection_reason TEXT,
    edited_action    TEXT,
    action_hash      TEXT,
    plan             TEXT,               -- NULL: one sign-off by any reviewer
    approvals        TEXT,               -- JSON array of sign-offs, NULL for none
    stage            TEXT
);
CREATE INDEX requests_by_status ON requests (status, id DESC);
CREATE INDEX requests_by_requester ON requests (requester, id DESC);
CREATE INDEX requests_pending_expiry ON requests (expires_at) WHERE status = 'pending';

CREATE TABLE audit_log (
    seq             BIGINT PRIMARY KEY,
    at              TEXT NOT NULL,
    event           TEXT NOT NULL,
    request_id      UUID NOT NULL,
    title           TEXT NOT NULL,
    actor           TEXT,
    reason          TEXT,
    comment         TEXT,
    action          TEXT,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    original_action TEXT,
    stage           TEXT
);
CREATE INDEX audit_by_request ON audit_log (request_id, seq);

-- The head of the chain. Every transaction that appends to the trail locks
-- this row first, so replicas append one after the other and the chain has
-- no forks; it is also the lock order (head, then rows) that rules out
-- deadlocks between writers.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    hash     TEXT NOT NULL
);
INSERT INTO audit_head (id, last_seq, hash)
    VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    request_id  UUID NOT NULL
);

CREATE TABLE runs (
    id          UUID PRIMARY KEY,
    workflow    TEXT NOT NULL,
    input       TEXT NOT NULL,
    status      TEXT NOT NULL,
    attempt     BIGINT NOT NULL,
    draft       TEXT,
    request_id  UUID,
    result      TEXT,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    started_by  TEXT,
    -- Which replica drives the run, and until when: a replica that dies
    -- stops renewing, and another claims the run once the lease runs out.
    owner       TEXT,
    lease_until BIGINT
);
CREATE INDEX runs_unfinished ON runs (id)
    WHERE status IN ('drafting', 'validating', 'awaiting_approval', 'executing');

CREATE TABLE run_stages (
    seq      BIGSERIAL PRIMARY KEY,
    run_id   UUID NOT NULL REFERENCES runs (id),
    attempt  BIGINT NOT NULL,
    stage    TEXT NOT NULL,
    ok       BOOLEAN NOT NULL,
    at       BIGINT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE INDEX run_stages_by_run ON run_stages (run_id, seq);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'reviewer', 'admin')),
    groups      TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
