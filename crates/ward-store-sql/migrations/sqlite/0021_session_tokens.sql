-- A session begun with a ward token (the web UI's sign-in without an identity provider) names it:
-- the session is refused as soon as that token is revoked.
ALTER TABLE web_sessions ADD COLUMN token_id TEXT;
