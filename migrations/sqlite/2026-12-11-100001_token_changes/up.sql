-- Nodes cache live access tokens (docs/performance.md#token-cache). An access token revoked, or
-- deleted while live, by any writer (another process, the CLI, an older release) goes into the
-- change feed in the same transaction, so every node forgets it within a poll. Spending a
-- refresh token sets `used_at`, not `revoked_at`: the rotation path writes no feed row.
-- A migration that rebuilds oauth_tokens must create these triggers again.
CREATE TRIGGER oauth_tokens_revoked AFTER UPDATE OF revoked_at ON oauth_tokens
    WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL AND NEW.kind = 'access'
BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (NEW.tenant_id, 'tokens', NEW.handle, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
CREATE TRIGGER oauth_tokens_deleted AFTER DELETE ON oauth_tokens
    WHEN OLD.revoked_at IS NULL AND OLD.kind = 'access'
         AND OLD.expires_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
BEGIN
    INSERT INTO changes (tenant_id, kind, subject, at)
    VALUES (OLD.tenant_id, 'tokens', OLD.handle, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
END;
