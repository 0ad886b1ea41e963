-- The change feed: every node caches tenants, clients and key rings, and follows this table to
-- forget an entry within a poll interval of a change made anywhere (another node, the CLI,
-- tenants as code). Triggers write it in the changing transaction, so no write path can forget
-- to, and a rolled-back change leaves no row. Rows are pruned after an hour.
-- A migration that rebuilds one of these tables must create its triggers again.
CREATE TABLE changes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
CREATE TRIGGER tenants_changed_insert AFTER INSERT ON tenants BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.id, 'tenant', NEW.slug, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER tenants_changed_update AFTER UPDATE ON tenants BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.id, 'tenant', NEW.slug, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER tenants_changed_delete AFTER DELETE ON tenants BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (OLD.id, 'tenant', OLD.slug, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER clients_changed_insert AFTER INSERT ON clients BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'client', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER clients_changed_update AFTER UPDATE ON clients BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'client', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER clients_changed_delete AFTER DELETE ON clients BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (OLD.tenant_id, 'client', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER signing_keys_changed_insert AFTER INSERT ON signing_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'keys', NEW.kid, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER signing_keys_changed_update AFTER UPDATE ON signing_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'keys', NEW.kid, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER signing_keys_changed_delete AFTER DELETE ON signing_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (OLD.tenant_id, 'keys', OLD.kid, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER data_keys_changed_insert AFTER INSERT ON data_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'keys', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER data_keys_changed_update AFTER UPDATE ON data_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'keys', NEW.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER data_keys_changed_delete AFTER DELETE ON data_keys BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (OLD.tenant_id, 'keys', OLD.id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER master_key_checks_changed_insert AFTER INSERT ON master_key_checks BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES ('', 'master', NEW.kek_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER master_key_checks_changed_update AFTER UPDATE ON master_key_checks BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES ('', 'master', NEW.kek_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER master_key_checks_changed_delete AFTER DELETE ON master_key_checks BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES ('', 'master', OLD.kek_id, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
