DROP TABLE admin_roles;
CREATE TABLE admin_tokens_old (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (tenant_id, id)
);
INSERT INTO admin_tokens_old (id, tenant_id, name, role, token_hash, created_at, expires_at)
    SELECT id, tenant_id, name,
           CASE WHEN roles LIKE '%tenant-admin%' THEN 'admin' ELSE 'reader' END,
           token_hash, created_at, expires_at
    FROM admin_tokens WHERE token_hash IS NOT NULL;
DROP TABLE admin_tokens;
ALTER TABLE admin_tokens_old RENAME TO admin_tokens;
