-- The grant's role, passed to provisioners other than postgres-role (a program, a webhook).
ALTER TABLE logins ADD COLUMN role TEXT NOT NULL DEFAULT '';
