-- Domains a tenant claims, verified by a DNS TXT record or an HTTP file carrying `token`
-- (issue 22, SAML onboarding). A domain may be claimed by several tenants but verified by one
-- at most: the partial unique index is that rule.
CREATE TABLE tenant_domains (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL,
    method          TEXT NOT NULL,
    token           TEXT NOT NULL,
    verified_at     BIGINT,
    last_checked_at BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, domain)
);

CREATE UNIQUE INDEX tenant_domains_verified_once ON tenant_domains (domain) WHERE verified_at IS NOT NULL;
