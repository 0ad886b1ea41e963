-- Verified email (issue 20, item 4): whether the user proved they read mail at `users.email`,
-- and the single-use links that prove it. A link is stored as its SHA-256 with the address it
-- was sent to: a link for an address the user no longer has verifies nothing.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE email_verifications (
    tenant_id  TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    email      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX email_verifications_user ON email_verifications (tenant_id, user_id);
