-- ward: approval workflows. A request's terms beyond the basics (stages, holder limit, the facts
-- the policy saw, extension and break-glass) as JSON; a grant's extensions and break-glass review.
ALTER TABLE requests ADD COLUMN terms TEXT NOT NULL DEFAULT '{}';
ALTER TABLE grants ADD COLUMN extensions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE grants ADD COLUMN review TEXT;
-- Copies of the review's state and deadline, for the scheduler and listings to select on.
ALTER TABLE grants ADD COLUMN review_state TEXT CHECK (review_state IN ('pending', 'overdue', 'done'));
ALTER TABLE grants ADD COLUMN review_due_at BIGINT;
CREATE INDEX grants_review_pending_by_due ON grants (review_due_at) WHERE review_state = 'pending';
CREATE INDEX grants_live_by_target ON grants (resource, role) WHERE state IN ('scheduled', 'active');
