-- Groups and attribute definitions get a version for the admin API's ETag and If-Match (RFC
-- 9110 §13.1.1): updated_at (Unix ms) moves on with every change of the object itself. Rows
-- that exist start at their creation time.
ALTER TABLE groups ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE groups SET updated_at = created_at;
ALTER TABLE attribute_defs ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE attribute_defs SET updated_at = created_at;
