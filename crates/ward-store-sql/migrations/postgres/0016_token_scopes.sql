-- What a token may be used for, as OAuth writes scopes: words separated by spaces (`check push`).
-- Tokens minted before scopes existed keep what they could do: everything (`admin`).
ALTER TABLE api_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'admin';
