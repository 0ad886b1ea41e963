-- Sessions of a user created before this instant are void (an administrator's MFA reset ends
-- them from any process, whatever the session store).
ALTER TABLE users ADD COLUMN sessions_not_before BIGINT;

-- A user's authenticator app: the TOTP seed sealed under the tenant's data key (row = user id).
-- Unconfirmed until the first valid code.
CREATE TABLE mfa_totp (
    tenant_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    seed_sealed  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_at BIGINT,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Recovery codes by SHA-256; each spent once.
CREATE TABLE mfa_recovery_codes (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Passkeys (WebAuthn credentials) per tenant: the id is the base64url credential id, unique in
-- the tenant (a credential can't be registered to a second user); `credential` is the public
-- key with its counter and flags as webauthn-rs serialises it.
CREATE TABLE mfa_passkeys (
    tenant_id    TEXT NOT NULL,
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    credential   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX mfa_passkeys_user ON mfa_passkeys (tenant_id, user_id);
