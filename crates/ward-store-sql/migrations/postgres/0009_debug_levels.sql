-- Debug-level resources: the grants holding a service's level raised, and the level to put back.
-- Written by the consumer that runs the drivers, with its cursor; `original` is written before a
-- raise is attempted and kept if one is there (see `DebugLevelWrite::Original`).
CREATE TABLE debug_levels (
    resource       TEXT PRIMARY KEY,
    holders        TEXT NOT NULL,
    original       TEXT,
    raised         BIGINT NOT NULL CHECK (raised IN (0, 1)),
    ended_at       BIGINT,
    failing_since  BIGINT,
    updated_at     BIGINT NOT NULL
);
