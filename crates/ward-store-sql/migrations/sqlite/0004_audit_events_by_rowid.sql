-- `seq BIGINT PRIMARY KEY` made SQLite keep a separate index on seq and look every row up
-- twice; `INTEGER PRIMARY KEY` makes seq the rowid itself, so reading the log in order is one
-- walk of the table. The table is rebuilt with the same columns, rows, indexes and triggers.

CREATE TABLE audit_events_by_rowid (
    seq         INTEGER PRIMARY KEY,
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
INSERT INTO audit_events_by_rowid
SELECT seq, id, type, occurred_at, recorded_at, actor, subject, resource, request_id, grant_id, reason,
       details, prev_hash, hash
FROM audit_events ORDER BY seq;
-- Dropping a table fires no DELETE trigger; its indexes and triggers go with it.
DROP TABLE audit_events;
ALTER TABLE audit_events_by_rowid RENAME TO audit_events;

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
