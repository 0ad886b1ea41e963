DROP TRIGGER oauth_tokens_deleted;
DROP TRIGGER oauth_tokens_revoked;
