-- People ward knows from its identity provider (a token's claims; later SCIM): their groups
-- there, merged with ward.toml's into the directory policies decide over. `version` moves by one
-- with each change, so two processes seeing the same new claims record them once.
CREATE TABLE people (
    name       TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    subject    TEXT,
    groups     TEXT NOT NULL,
    active     BIGINT NOT NULL,
    claims_at  BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
-- Moves with every change to `people`: a process reads it to know its view of them is current.
INSERT INTO store_epochs (name, value) VALUES ('people', 0);
