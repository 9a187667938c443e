-- Signed checkpoints of the audit log (C2SP signed notes), one per tree size.
CREATE TABLE audit_checkpoints (
    size      BIGINT PRIMARY KEY,
    root      TEXT NOT NULL,
    note      TEXT NOT NULL,
    signed_at BIGINT NOT NULL
);
