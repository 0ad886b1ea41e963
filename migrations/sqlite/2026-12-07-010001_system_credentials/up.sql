-- System credentials: `lks_` bearer tokens (stored as SHA-256) for the installation's scope
-- (`/admin/system/…`: tenants, their data keys). They belong to no tenant and hold only
-- `system:` permissions, by the built-in role `system-admin` or one by one. Their calls are
-- written to the audit chain `system`, started here.
CREATE TABLE system_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    updated_at  BIGINT NOT NULL
);

INSERT INTO audit_heads (tenant_id, seq, hash)
SELECT 'system', 0, '0000000000000000000000000000000000000000000000000000000000000000'
WHERE NOT EXISTS (SELECT 1 FROM audit_heads WHERE tenant_id = 'system');
