-- Each tenant's pairwise-subject salt (OIDC Core §8.1): 32 random bytes made on first use,
-- sealed under the tenant's data key (row = tenant id). Never replaced: every pairwise `sub`
-- of the tenant is derived from it, so it must outlive data-key and master-key rotations
-- (they re-seal it, its value stays).
CREATE TABLE pairwise_salts (
    tenant_id   TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    salt_sealed TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
