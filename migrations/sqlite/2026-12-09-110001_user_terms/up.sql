-- The version of the tenant's terms of service each user last accepted (docs/privacy.md).
-- The history of acceptances is the audit chain (`terms.accept`); this row is what the
-- authorization endpoint checks. Goes with the user.
CREATE TABLE user_terms (
    tenant_id   TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    version     TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
