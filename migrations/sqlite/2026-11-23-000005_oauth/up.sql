-- Per-client settings (ID-token algorithm, token lifetimes) as JSON.
ALTER TABLE clients ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';

-- One authorization of a client by a user: everything issued from one code hangs off it, so a
-- replayed code or a reused refresh token revokes the lot. `session_key` names the browser
-- session it came from (the session store's key), ended with it unless offline access.
CREATE TABLE oauth_grants (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    session_key    TEXT,
    scope          TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    acr            TEXT,
    amr            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    revoked_at     BIGINT,
    revoked_reason TEXT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX oauth_grants_user ON oauth_grants (tenant_id, user_id, client_id);
CREATE INDEX oauth_grants_session ON oauth_grants (tenant_id, session_key);

-- Authorization codes by SHA-256; spent once (used_at).
CREATE TABLE oauth_codes (
    tenant_id      TEXT NOT NULL,
    code_hash      TEXT NOT NULL,
    grant_id       TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    PRIMARY KEY (tenant_id, code_hash),
    FOREIGN KEY (tenant_id, grant_id) REFERENCES oauth_grants (tenant_id, id) ON DELETE CASCADE
);

-- Refresh tokens and stateful access tokens. `handle` is the SHA-256 of an opaque token, or the
-- `jti` of a JWT access token issued to a user (so revoking its grant reaches it).
CREATE TABLE oauth_tokens (
    tenant_id  TEXT NOT NULL,
    handle     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    grant_id   TEXT,
    client_id  TEXT NOT NULL,
    user_id    TEXT,
    scope      TEXT NOT NULL,
    audience   TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked_at BIGINT,
    PRIMARY KEY (tenant_id, handle),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, grant_id) REFERENCES oauth_grants (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (tenant_id, grant_id);

-- What a user allowed a client: the scopes, space-separated.
CREATE TABLE oauth_consents (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_id),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
