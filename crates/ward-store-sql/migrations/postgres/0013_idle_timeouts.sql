-- Idle timeouts: a grant unused for `idle_timeout_seconds` ends by itself. `last_used_at` is the
-- last use on record and `idle_at` the deadline it gives; both only ever move forward.
ALTER TABLE grants ADD COLUMN idle_timeout_seconds BIGINT;
ALTER TABLE grants ADD COLUMN last_used_at BIGINT;
ALTER TABLE grants ADD COLUMN idle_at BIGINT;
CREATE INDEX grants_active_by_idle ON grants (idle_at) WHERE state = 'active' AND idle_at IS NOT NULL;
