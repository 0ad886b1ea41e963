-- SAML connections: a tenant's enterprise identity provider, with Latchkey as the service
-- provider toward it. `idp_certificates` is a JSON array of base64 DER signing certificates;
-- `options` is the connection's SamlOptions as JSON; `sp_key_sealed` is Latchkey's own private
-- key for the connection, sealed under the tenant's data key (row = connection id).
CREATE TABLE saml_connections (
    tenant_id             TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                    TEXT NOT NULL,
    name                  TEXT NOT NULL,
    display_name          TEXT NOT NULL,
    idp_entity_id         TEXT NOT NULL,
    sso_url               TEXT NOT NULL,
    sso_binding           TEXT NOT NULL,
    idp_certificates      TEXT NOT NULL,
    wants_signed_requests BOOLEAN NOT NULL,
    metadata_url          TEXT,
    options               TEXT NOT NULL,
    sp_certificate        TEXT NOT NULL,
    sp_key_sealed         TEXT NOT NULL,
    metadata_refreshed_at BIGINT,
    metadata_error        TEXT,
    next_refresh_at       BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX saml_connections_refresh ON saml_connections (next_refresh_at);

-- Which user a NameID of a connection signs in as.
CREATE TABLE saml_identities (
    tenant_id     TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    name_id       TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    PRIMARY KEY (tenant_id, connection_id, name_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES saml_connections (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX saml_identities_user ON saml_identities (tenant_id, user_id);
