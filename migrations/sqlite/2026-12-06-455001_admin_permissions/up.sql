-- Fine-grained admin permissions. A credential holds admin roles (built-in names such as
-- `tenant-admin`, or a tenant's custom roles) and single permissions, both space-separated; it
-- is either an `lka_` bearer token (token_hash) or a client of the tenant that authenticates
-- with OAuth client credentials (client_id). The old two roles become built-in roles.
CREATE TABLE admin_tokens_new (
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
INSERT INTO admin_tokens_new (id, tenant_id, name, roles, token_hash, created_at, expires_at, updated_at)
    SELECT id, tenant_id, name,
           CASE role WHEN 'admin' THEN 'tenant-admin' ELSE 'read-only auditor' END,
           token_hash, created_at, expires_at, created_at
    FROM admin_tokens;
DROP TABLE admin_tokens;
ALTER TABLE admin_tokens_new RENAME TO admin_tokens;

CREATE TABLE admin_roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
