-- A user's bounded sign-in history for risk scoring (devices as digests, networks, autonomous
-- systems, last location, hours), sealed under the tenant's data key: it is personal data.
CREATE TABLE risk_history (
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    history_sealed TEXT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX risk_history_updated ON risk_history (updated_at);

-- The outbox carries webhooks too: `recipient` is then the URL and `subject` the event name.
ALTER TABLE mail_outbox ADD COLUMN channel TEXT NOT NULL DEFAULT 'mail';

-- Retention deletes the oldest whole segment of a chain; the anchor is the last deleted event's
-- sequence number and hash, so verification starts from it.
ALTER TABLE audit_heads ADD COLUMN anchor_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE audit_heads ADD COLUMN anchor_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';

CREATE INDEX audit_events_at ON audit_events (tenant_id, at);
