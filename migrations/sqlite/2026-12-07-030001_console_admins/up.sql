-- Console admins: a credential may also be one of the tenant's users, who opens the admin
-- console (`/t/{tenant}/admin/`) by signing in with two factors. Exactly one of token_hash,
-- client_id and user_id says how a credential proves itself; deleting the user deletes it.
CREATE TABLE admin_tokens_new (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    token_hash  TEXT UNIQUE,
    client_id   TEXT,
    user_id     TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    updated_at  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, client_id),
    UNIQUE (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CHECK ((token_hash IS NOT NULL) + (client_id IS NOT NULL) + (user_id IS NOT NULL) = 1)
);
INSERT INTO admin_tokens_new (id, tenant_id, name, roles, permissions, token_hash, client_id,
                              created_at, expires_at, updated_at)
    SELECT id, tenant_id, name, roles, permissions, token_hash, client_id,
           created_at, expires_at, updated_at
    FROM admin_tokens;
DROP TABLE admin_tokens;
ALTER TABLE admin_tokens_new RENAME TO admin_tokens;
