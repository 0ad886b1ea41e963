CREATE TABLE system_tokens_old (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    roles       TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '',
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    updated_at  BIGINT NOT NULL
);
INSERT INTO system_tokens_old (id, name, roles, permissions, token_hash, created_at, expires_at, updated_at)
    SELECT id, name, roles, permissions, token_hash, created_at, expires_at, updated_at
    FROM system_tokens WHERE token_hash IS NOT NULL;
DROP TABLE system_tokens;
ALTER TABLE system_tokens_old RENAME TO system_tokens;
