ALTER TABLE user_attributes DROP COLUMN value_sealed;
ALTER TABLE users DROP COLUMN deletion_reason;
ALTER TABLE users DROP COLUMN profile_sealed;
DROP TABLE user_keys;
