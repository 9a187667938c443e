-- People pushed by a directory (SCIM): the name the directory shows for them, when ward first
-- knew them, and when the directory deleted them (kept, inactive, so their name and tokens stay
-- refused and the record says what happened).
ALTER TABLE people ADD COLUMN display_name TEXT;
ALTER TABLE people ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
UPDATE people SET created_at = updated_at;
ALTER TABLE people ADD COLUMN deleted_at BIGINT;
