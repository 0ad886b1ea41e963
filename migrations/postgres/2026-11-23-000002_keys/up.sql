-- Keys: the master-key check value, per-tenant data keys wrapped by the master key, and the
-- per-tenant signing key ring. Private keys are stored only sealed under a data key.

CREATE TABLE master_key_checks (
    kek_id      TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE data_keys (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    kek_id     TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE signing_keys (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kid          TEXT NOT NULL,
    alg          TEXT NOT NULL CHECK (alg IN ('ES256', 'RS256', 'EdDSA')),
    key_use      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retired', 'removed', 'revoked')),
    public_jwk   TEXT NOT NULL,
    private_key  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT,
    retired_at   BIGINT,
    removed_at   BIGINT,
    PRIMARY KEY (tenant_id, kid)
);
CREATE INDEX signing_keys_state ON signing_keys (tenant_id, state);
