-- System operators: a system credential may also be a user of a tenant (the operator's own
-- account), who opens the system console (`/t/{tenant}/admin/system/`) by signing in there
-- with two factors. Exactly one of token_hash and (user_tenant_id, user_id) is set.
ALTER TABLE system_tokens ALTER COLUMN token_hash DROP NOT NULL;
ALTER TABLE system_tokens ADD COLUMN user_tenant_id TEXT;
ALTER TABLE system_tokens ADD COLUMN user_id TEXT;
ALTER TABLE system_tokens ADD CONSTRAINT system_tokens_user UNIQUE (user_tenant_id, user_id);
ALTER TABLE system_tokens ADD CONSTRAINT system_tokens_user_ref
    FOREIGN KEY (user_tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE system_tokens ADD CONSTRAINT system_tokens_one_kind
    CHECK ((token_hash IS NULL) <> (user_id IS NULL));
ALTER TABLE system_tokens ADD CONSTRAINT system_tokens_user_pair
    CHECK ((user_tenant_id IS NULL) = (user_id IS NULL));
