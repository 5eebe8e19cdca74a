-- API tokens (only the SHA-256 of each secret is kept) and who started a run
-- (the requester of its approval requests, for separation of duties).
CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,   -- the public part of the token
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('agent', 'reviewer', 'admin')),
    groups      TEXT NOT NULL,      -- JSON array of strings
    secret_hash TEXT NOT NULL,      -- hex SHA-256 of the secret
    created_at  INTEGER NOT NULL,   -- microseconds since the epoch
    expires_at  INTEGER,
    revoked_at  INTEGER
);
ALTER TABLE runs ADD COLUMN started_by TEXT;
