-- Fingerprints (an HMAC of a fixed text under the key, never the key) of the keys every ward
-- process on this store must share: the redaction key and the audit HMAC key. The first start
-- records each; a start with another key is refused unless told that its key replaces the
-- recorded one, which `config.changed` records in the same transaction.
CREATE TABLE key_fingerprints (
    name        TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
