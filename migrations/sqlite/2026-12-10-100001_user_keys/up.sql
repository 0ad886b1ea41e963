-- Crypto-shredding (docs/privacy.md#erasure): each user's personal data is sealed under a key
-- of their own, wrapped under the tenant's data key. Erasing a user deletes this row with the
-- user; without it nothing sealed under the key opens again, in this database or a backup
-- (backup files leave this table out; `latchkey backup --vault` writes it on its own).
CREATE TABLE user_keys (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    key_sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
-- A sealed user's username, email and display name, as JSON sealed under the user's key; the
-- username and email columns then hold keyed hashes (blind indexes) for lookups and
-- uniqueness, and display_name is empty. Rows written before this release keep plaintext
-- until `latchkey privacy seal` converts them.
ALTER TABLE users ADD COLUMN profile_sealed TEXT;
-- Why an erasure was asked for (shown while it waits for its grace period).
ALTER TABLE users ADD COLUMN deletion_reason TEXT;
-- A sealed attribute value (JSON sealed under the user's key); `value` and `unique_key` then
-- hold keyed hashes.
ALTER TABLE user_attributes ADD COLUMN value_sealed TEXT;
