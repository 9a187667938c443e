-- Who runs each consumer of the audit log (a forwarding sink today): one holder at a time among
-- all the ward processes sharing the store, until its lease expires unrenewed. A consumer's
-- cursor moves only while its holder's lease is live.
CREATE TABLE consumer_leases (
    consumer   TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
