-- Nodes cache live access tokens (docs/performance.md#token-cache). An access token revoked, or
-- deleted while live, by any writer (another node, the CLI, an older release) goes into the
-- change feed in the same transaction, so every node forgets it within a poll. Spending a
-- refresh token sets `used_at`, not `revoked_at`: the rotation path writes no feed row.
CREATE TRIGGER oauth_tokens_revoked AFTER UPDATE OF revoked_at ON oauth_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.kind = 'access')
    EXECUTE FUNCTION latchkey_note_change('tokens', 'tenant_id', 'handle');
CREATE TRIGGER oauth_tokens_deleted AFTER DELETE ON oauth_tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.kind = 'access'
                       AND OLD.expires_at > (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
    EXECUTE FUNCTION latchkey_note_change('tokens', 'tenant_id', 'handle');
