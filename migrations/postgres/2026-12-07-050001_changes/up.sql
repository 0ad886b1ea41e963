-- The change feed: every node caches tenants, clients and key rings, and follows this table to
-- forget an entry within a poll interval of a change made anywhere (another node, the CLI,
-- tenants as code). Triggers write it in the changing transaction, so no write path can forget
-- to, and a rolled-back change leaves no row. Rows are pruned after an hour.
CREATE TABLE changes (
    id        BIGSERIAL PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);

-- Arguments: the kind, the column naming the tenant, the column naming the subject.
CREATE FUNCTION latchkey_note_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
BEGIN
    IF TG_OP = 'DELETE' THEN
        r := to_jsonb(OLD);
    ELSE
        r := to_jsonb(NEW);
    END IF;
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (COALESCE(r ->> TG_ARGV[1], ''), TG_ARGV[0], COALESCE(r ->> TG_ARGV[2], ''),
            (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION latchkey_note_change('tenant', 'id', 'slug');
CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION latchkey_note_change('client', 'tenant_id', 'id');
CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION latchkey_note_change('keys', 'tenant_id', 'kid');
CREATE TRIGGER data_keys_changed AFTER INSERT OR UPDATE OR DELETE ON data_keys
    FOR EACH ROW EXECUTE FUNCTION latchkey_note_change('keys', 'tenant_id', 'id');
CREATE TRIGGER master_key_checks_changed AFTER INSERT OR UPDATE OR DELETE ON master_key_checks
    FOR EACH ROW EXECUTE FUNCTION latchkey_note_change('master', 'none', 'kek_id');
