-- When each user last signed in, and when they were last told their account is inactive
-- (docs/privacy.md#retention). A user without a row has not signed in since this table came:
-- their account's creation counts instead. Goes with the user.
CREATE TABLE user_activity (
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    last_sign_in_at BIGINT NOT NULL,
    notified_at    BIGINT,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_activity_last ON user_activity (tenant_id, last_sign_in_at);
