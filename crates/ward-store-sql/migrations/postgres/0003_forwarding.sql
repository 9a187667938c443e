-- How far each forwarding sink has delivered the audit log: the outbox is the log itself.
CREATE TABLE audit_forward_cursors (
    sink       TEXT PRIMARY KEY,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
