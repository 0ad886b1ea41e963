CREATE TABLE admin_tokens_old (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    token_hash  TEXT UNIQUE,
    client_id   TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    updated_at  BIGINT NOT NULL DEFAULT 0,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, client_id),
    CHECK ((token_hash IS NULL) <> (client_id IS NULL))
);
INSERT INTO admin_tokens_old (id, tenant_id, name, roles, permissions, token_hash, client_id,
                              created_at, expires_at, updated_at)
    SELECT id, tenant_id, name, roles, permissions, token_hash, client_id,
           created_at, expires_at, updated_at
    FROM admin_tokens WHERE user_id IS NULL;
DROP TABLE admin_tokens;
ALTER TABLE admin_tokens_old RENAME TO admin_tokens;
