-- Temporary logins made in other systems for grants' windows (`postgres-role` resources).
-- Written by the consumer that runs the provisioner, with its cursor; `credentials_issued_at`
-- only by the service, when the holder is shown the credentials (once). A row is deleted once
-- the account is removed from the target.
CREATE TABLE logins (
    grant_id               TEXT PRIMARY KEY,
    resource               TEXT NOT NULL,
    account                TEXT NOT NULL,
    expires_at             BIGINT NOT NULL,
    applied_until          BIGINT,
    ended_at               BIGINT,
    failing_since          BIGINT,
    credentials_issued_at  BIGINT,
    updated_at             BIGINT NOT NULL
);
