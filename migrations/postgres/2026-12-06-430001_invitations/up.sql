-- Invitations: an administrator invites an email address into a tenant, optionally with a
-- username, a display name and groups. The mailed link carries a 256-bit token stored only as
-- its SHA-256; accepting it creates the user (in the groups) and spends it. A re-send replaces
-- the token. `groups` is a JSON array of group ids (groups deleted meanwhile are skipped).
-- `user_id` records who the invitation became; it is not a reference (the user may be deleted,
-- which deletes the invitation with them).
CREATE TABLE invitations (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    email        TEXT NOT NULL,
    username     TEXT,
    display_name TEXT,
    groups       TEXT NOT NULL,
    token_hash   TEXT NOT NULL,
    invited_by   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    sent_at      BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    revoked_at   BIGINT,
    user_id      TEXT,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash)
);
CREATE INDEX invitations_email ON invitations (tenant_id, email);
