-- Workflow runs and the result of each of their stages.
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,   -- UUIDv7
    workflow    TEXT NOT NULL,
    input       TEXT NOT NULL,      -- JSON
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    draft       TEXT,               -- JSON, the current attempt's draft
    request_id  TEXT,               -- the current attempt's approval request
    result      TEXT,               -- JSON, the executor's result
    error       TEXT,
    created_at  INTEGER NOT NULL,   -- microseconds since the epoch
    updated_at  INTEGER NOT NULL
);
-- Resuming after a restart: the runs that are not over.
CREATE INDEX runs_unfinished ON runs (id)
    WHERE status IN ('drafting', 'validating', 'awaiting_approval', 'executing');

CREATE TABLE run_stages (
    seq      INTEGER PRIMARY KEY,
    run_id   TEXT NOT NULL REFERENCES runs (id),
    attempt  INTEGER NOT NULL,
    stage    TEXT NOT NULL,
    ok       INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    detail   TEXT NOT NULL          -- JSON
);
CREATE INDEX run_stages_by_run ON run_stages (run_id, seq);
