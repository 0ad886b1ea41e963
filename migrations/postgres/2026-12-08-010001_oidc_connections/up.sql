-- Upstream OpenID Connect (and OAuth 2.0) connections of a tenant, with Latchkey as the relying
-- party. `config` is the connection's settings as JSON (kind, issuer, client, endpoints,
-- options); `secret_sealed` is its client secret or private_key_jwt key, sealed under the
-- tenant's data key (row = connection id); `discovered` is the last good discovery and JWKS.
CREATE TABLE oidc_connections (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id              TEXT NOT NULL,
    name            TEXT NOT NULL,
    display_name    TEXT NOT NULL,
    config          TEXT NOT NULL,
    secret_sealed   TEXT NOT NULL,
    discovered      TEXT,
    discovery_error TEXT,
    next_refresh_at BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX oidc_connections_refresh ON oidc_connections (next_refresh_at);

-- Which user an upstream subject of a connection signs in as.
CREATE TABLE oidc_identities (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    subject       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (tenant_id, connection_id, subject),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES oidc_connections (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX oidc_identities_user ON oidc_identities (tenant_id, user_id);
