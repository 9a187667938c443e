-- One cursor table for every consumer of the audit log (forwarding sinks, the rules, …), keyed by
-- the consumer's name as its lease names it. A consumer's cursor moves in the same transaction as
-- its effects, and only under its holder's live lease. The forwarding sinks' cursors move over as
-- `forward:<sink>`.
CREATE TABLE consumer_cursors (
    consumer   TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO consumer_cursors (consumer, seq, updated_at)
SELECT 'forward:' || sink, seq, updated_at FROM audit_forward_cursors;
DROP TABLE audit_forward_cursors;

-- What the rules saw in the log, and what people made of it.
CREATE TABLE findings (
    id            TEXT PRIMARY KEY,
    rule          TEXT NOT NULL,
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'low', 'medium', 'high', 'critical')),
    key           TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved', 'dismissed')),
    subject       TEXT,
    resource      TEXT,
    grant_id      TEXT,
    request_id    TEXT,
    seqs          TEXT NOT NULL,
    summary       TEXT NOT NULL,
    occurrences   BIGINT NOT NULL CHECK (occurrences >= 1),
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    moved_by      TEXT,
    comment       TEXT,
    version       BIGINT NOT NULL
);
-- The same condition is one finding while it is looked at: a second live one per key is refused.
CREATE UNIQUE INDEX findings_live_by_key ON findings (key) WHERE state IN ('open', 'acknowledged');
CREATE INDEX findings_by_key ON findings (key, first_seen_at);
CREATE INDEX findings_by_first_seen ON findings (first_seen_at);
CREATE INDEX findings_by_subject ON findings (subject, first_seen_at);
