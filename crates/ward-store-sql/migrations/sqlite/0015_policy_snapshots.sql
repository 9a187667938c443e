-- The policy set in force, whole (Cedar sources, ticket patterns, users, groups, resources), kept
-- by the SHA-256 of its JSON. `policy.changed` and `directory.reloaded` name the snapshot they put
-- in force, so an evidence report works out who could ask for what at any past moment.
CREATE TABLE policy_snapshots (
    digest TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
