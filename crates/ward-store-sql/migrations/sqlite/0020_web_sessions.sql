-- Browser sessions of the web UI: only the SHA-256 of the cookie's secret is kept. A session is
-- refused from `expires_at` on, and from `ended_at` on (signed out; its person deactivated).
CREATE TABLE web_sessions (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    principal  TEXT NOT NULL,
    source     TEXT NOT NULL,
    mfa        BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT,
    ended_by   TEXT
);
CREATE INDEX web_sessions_open_by_principal ON web_sessions (principal, created_at) WHERE ended_at IS NULL;
