-- Foundation schema. Times are Unix milliseconds (UTC) in BIGINT, identical in both dialects.
-- Every tenant-scoped table carries tenant_id, and references between tenant-scoped rows are
-- composite (tenant_id, id), so no row can point into another tenant.

CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    policy       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    username            TEXT NOT NULL,
    email               TEXT,
    display_name        TEXT,
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    password_hash       TEXT,
    password_changed_at BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, username),
    UNIQUE (tenant_id, email)
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

CREATE TABLE user_roles (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    role_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_roles_role ON user_roles (tenant_id, role_id);

CREATE TABLE clients (
    id                        TEXT PRIMARY KEY,
    tenant_id                 TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                      TEXT NOT NULL,
    secret_hash               TEXT,
    client_type               TEXT NOT NULL CHECK (client_type IN ('public', 'confidential')),
    auth_method               TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    access_token_format       TEXT NOT NULL,
    require_pkce              BOOLEAN NOT NULL,
    introspect_others         BOOLEAN NOT NULL,
    first_party               BOOLEAN NOT NULL,
    jwks_uri                  TEXT,
    jwks                      TEXT,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    -- A public client never has a secret; private_key_jwt needs keys to check assertions against.
    CHECK (client_type = 'confidential' OR secret_hash IS NULL),
    CHECK (auth_method <> 'private_key_jwt' OR jwks_uri IS NOT NULL OR jwks IS NOT NULL)
);

-- Bearer tokens for the admin API, scoped to one tenant and one role. Only SHA-256 is stored.
CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    UNIQUE (tenant_id, id)
);

-- The audit chain outlives the rows it describes (a deleted tenant's history stays verifiable),
-- so these two tables deliberately have no foreign key to tenants.
CREATE TABLE audit_heads (
    tenant_id TEXT PRIMARY KEY,
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);

CREATE TABLE audit_events (
    tenant_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
