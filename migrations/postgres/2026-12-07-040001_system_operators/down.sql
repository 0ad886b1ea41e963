DELETE FROM system_tokens WHERE token_hash IS NULL;
ALTER TABLE system_tokens DROP CONSTRAINT system_tokens_user_pair;
ALTER TABLE system_tokens DROP CONSTRAINT system_tokens_one_kind;
ALTER TABLE system_tokens DROP CONSTRAINT system_tokens_user_ref;
ALTER TABLE system_tokens DROP CONSTRAINT system_tokens_user;
ALTER TABLE system_tokens DROP COLUMN user_id;
ALTER TABLE system_tokens DROP COLUMN user_tenant_id;
ALTER TABLE system_tokens ALTER COLUMN token_hash SET NOT NULL;
