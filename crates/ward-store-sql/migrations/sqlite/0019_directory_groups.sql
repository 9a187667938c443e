-- Groups a directory (SCIM) pushes: a stable id for the directory, the ward group name they
-- stand for (what policies name). Members are kept on the people (`people.groups`). `version`
-- moves by one with each change; a change moves the people epoch, so every process reloads.
CREATE TABLE directory_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    external_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version BIGINT NOT NULL
);
