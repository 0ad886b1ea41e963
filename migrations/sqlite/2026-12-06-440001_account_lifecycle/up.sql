-- Account deletion with a grace period: a user who asked to delete their account is disabled
-- at once and deleted when `deletion_due_at` passes (the retention pass); an operator's
-- restore clears it. NULL: no deletion pending.
ALTER TABLE users ADD COLUMN deletion_due_at BIGINT;
CREATE INDEX users_deletion_due ON users (deletion_due_at) WHERE deletion_due_at IS NOT NULL;
