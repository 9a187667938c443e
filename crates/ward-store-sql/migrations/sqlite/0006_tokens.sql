-- Tokens get a public id (to list and revoke them by), a revocation and when they were last used.
-- Tokens minted before have no id: they get one from their hash, which names them as well.
ALTER TABLE api_tokens ADD COLUMN id TEXT;
UPDATE api_tokens SET id = 'tok_' || substr(hash, 1, 32);
CREATE UNIQUE INDEX api_tokens_by_id ON api_tokens (id);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal, created_at);
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_by TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;

-- Counters that move when something every process caches changes (a token revoked), so a
-- process can tell with one read that its cache missed nothing.
CREATE TABLE store_epochs (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO store_epochs (name, value) VALUES ('tokens', 0);
