-- Outbound webhooks. The audit trail is the outbox: each subscription's
-- cursor is the last audit seq already turned into deliveries.
CREATE TABLE webhooks (
    id          UUID PRIMARY KEY,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,      -- JSON array of event names
    secret      TEXT NOT NULL,      -- HMAC key (needed in clear to sign)
    format      TEXT NOT NULL CHECK (format IN ('json', 'slack')),
    created_by  TEXT,
    created_at  BIGINT NOT NULL,    -- microseconds since the epoch
    cursor      BIGINT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              UUID PRIMARY KEY,   -- sent as Signoff-Delivery
    webhook_id      UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,    -- the audit entry
    event           TEXT NOT NULL,
    request_id      UUID NOT NULL,
    body            TEXT NOT NULL,      -- exactly what is sent
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT,
    UNIQUE (webhook_id, seq)
);
-- The senders' queue: pending deliveries by when they are due.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_request ON webhook_deliveries (request_id);
