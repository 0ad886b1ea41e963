DROP INDEX audit_events_at;
ALTER TABLE audit_heads DROP COLUMN anchor_hash;
ALTER TABLE audit_heads DROP COLUMN anchor_seq;
ALTER TABLE mail_outbox DROP COLUMN channel;
DROP TABLE risk_history;
