ALTER TABLE attribute_defs DROP COLUMN updated_at;
ALTER TABLE groups DROP COLUMN updated_at;
