DELETE FROM admin_tokens WHERE user_id IS NOT NULL;
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_one_kind;
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_user;
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_tenant_user;
ALTER TABLE admin_tokens DROP COLUMN user_id;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_one_kind
    CHECK ((token_hash IS NULL) <> (client_id IS NULL));
