-- Fine-grained admin permissions. A credential holds admin roles (built-in names such as
-- `tenant-admin`, or a tenant's custom roles) and single permissions, both space-separated; it
-- is either an `lka_` bearer token (token_hash) or a client of the tenant that authenticates
-- with OAuth client credentials (client_id). The old two roles become built-in roles.
ALTER TABLE admin_tokens ADD COLUMN roles TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN permissions TEXT NOT NULL DEFAULT '';
ALTER TABLE admin_tokens ADD COLUMN client_id TEXT;
ALTER TABLE admin_tokens ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE admin_tokens SET roles = CASE role WHEN 'admin' THEN 'tenant-admin' ELSE 'read-only auditor' END,
                        updated_at = created_at;
ALTER TABLE admin_tokens DROP COLUMN role;
ALTER TABLE admin_tokens ALTER COLUMN token_hash DROP NOT NULL;
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_tenant_client UNIQUE (tenant_id, client_id);
ALTER TABLE admin_tokens ADD CONSTRAINT admin_tokens_one_kind
    CHECK ((token_hash IS NULL) <> (client_id IS NULL));

CREATE TABLE admin_roles (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
