-- ward: the JIT lifecycle. Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE requests (
    id                 TEXT PRIMARY KEY,
    requester          TEXT NOT NULL,
    resource           TEXT NOT NULL,
    role               TEXT NOT NULL,
    duration_seconds   BIGINT NOT NULL CHECK (duration_seconds > 0),
    reason             TEXT NOT NULL,
    ticket             TEXT,
    start_at           BIGINT,
    state              TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'cancelled', 'lapsed')),
    created_at         BIGINT NOT NULL,
    decided_at         BIGINT,
    lapses_at          BIGINT NOT NULL,
    approvals          TEXT NOT NULL,
    approvals_required BIGINT NOT NULL,
    grant_id           TEXT,
    policy_ids         TEXT NOT NULL,
    version            BIGINT NOT NULL
);
CREATE INDEX requests_by_created ON requests (created_at);
CREATE INDEX requests_by_requester ON requests (requester, created_at);
CREATE INDEX requests_pending_by_lapse ON requests (lapses_at) WHERE state = 'pending';

CREATE TABLE grants (
    id            TEXT PRIMARY KEY,
    request_id    TEXT NOT NULL REFERENCES requests (id),
    principal     TEXT NOT NULL,
    resource      TEXT NOT NULL,
    role          TEXT NOT NULL,
    starts_at     BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL CHECK (expires_at > starts_at),
    state         TEXT NOT NULL CHECK (state IN ('scheduled', 'active', 'released', 'revoked', 'expired')),
    ended_at      BIGINT,
    ended_by      TEXT,
    end_reason    TEXT,
    first_used_at BIGINT,
    version       BIGINT NOT NULL
);
CREATE INDEX grants_by_starts ON grants (starts_at);
CREATE INDEX grants_by_principal ON grants (principal, starts_at);
CREATE INDEX grants_live_by_expiry ON grants (expires_at) WHERE state IN ('scheduled', 'active');
CREATE INDEX grants_scheduled_by_start ON grants (starts_at) WHERE state = 'scheduled';

-- The audit log: append-only, numbered without gaps, each event hashed over the one before.
CREATE TABLE audit_events (
    seq         BIGINT PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT,
    resource    TEXT,
    request_id  TEXT,
    grant_id    TEXT,
    reason      TEXT,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
CREATE INDEX audit_events_by_subject ON audit_events (subject, seq);
CREATE INDEX audit_events_by_resource ON audit_events (resource, seq);
CREATE INDEX audit_events_by_type ON audit_events (type, seq);
CREATE INDEX audit_events_by_request ON audit_events (request_id);
CREATE INDEX audit_events_by_grant ON audit_events (grant_id);
CREATE INDEX audit_events_by_occurred ON audit_events (occurred_at);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END;

-- The head of the chain: one row, updated in the transaction that appends. `frontier` holds the
-- roots of the Merkle tree's perfect subtrees (JSON list of hex), so the tree head is always known.
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    seq      BIGINT NOT NULL,
    hash     TEXT NOT NULL,
    frontier TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, frontier)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', '[]');

-- API tokens: only their SHA-256 is kept.
CREATE TABLE api_tokens (
    hash       TEXT PRIMARY KEY,
    principal  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
