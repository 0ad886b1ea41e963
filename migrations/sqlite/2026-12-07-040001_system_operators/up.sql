-- System operators: a system credential may also be a user of a tenant (the operator's own
-- account), who opens the system console (`/t/{tenant}/admin/system/`) by signing in there
-- with two factors. Exactly one of token_hash and (user_tenant_id, user_id) is set.
CREATE TABLE system_tokens_new (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    roles          TEXT NOT NULL DEFAULT '',
    permissions    TEXT NOT NULL DEFAULT '',
    token_hash     TEXT UNIQUE,
    user_tenant_id TEXT,
    user_id        TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    updated_at     BIGINT NOT NULL,
    UNIQUE (user_tenant_id, user_id),
    FOREIGN KEY (user_tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CHECK ((token_hash IS NULL) <> (user_id IS NULL)),
    CHECK ((user_tenant_id IS NULL) = (user_id IS NULL))
);
INSERT INTO system_tokens_new (id, name, roles, permissions, token_hash, created_at, expires_at, updated_at)
    SELECT id, name, roles, permissions, token_hash, created_at, expires_at, updated_at FROM system_tokens;
DROP TABLE system_tokens;
ALTER TABLE system_tokens_new RENAME TO system_tokens;
