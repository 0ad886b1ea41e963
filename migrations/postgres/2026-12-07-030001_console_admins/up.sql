-- Console admins: a credential may also be one of the tenant's users, who opens the admin
-- console (`/t/{tenant}/admin/`) by signing in with two factors. Exactly one of token_hash,
-- client_id and user_id says how a credential proves itself; deleting the user deletes it.
ALTER TABLE admin_tokens ADD COLUMN user_id TEXT;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_tenant_user UNIQUE (tenant_id, user_id);
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_user
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE admin_tokens DROP CONSTRAINT admin_tokens_one_kind;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_one_kind
    CHECK ((token_hash IS NOT NULL)::int + (client_id IS NOT NULL)::int + (user_id IS NOT NULL)::int = 1);
