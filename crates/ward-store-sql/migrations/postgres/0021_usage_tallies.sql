-- Repeated checks and refusals counted in memory, added here by each ward process every second
-- until a summary event says them (then deleted in the same transaction): a process that dies
-- loses at most its last second of counts. One row per writing process and key; `revision`
-- moves with every addition, so a summary deletes exactly the counts it wrote.
CREATE TABLE usage_tallies (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    writer      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('used', 'denied', 'touched')),
    grant_id    TEXT NOT NULL,
    principal   TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    count       BIGINT NOT NULL CHECK (count >= 0),
    first_at    BIGINT NOT NULL,
    last_at     BIGINT NOT NULL,
    last_caller TEXT NOT NULL,
    revision    BIGINT NOT NULL,
    UNIQUE (writer, kind, grant_id, principal, action, resource)
);
