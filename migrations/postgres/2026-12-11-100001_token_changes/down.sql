DROP TRIGGER oauth_tokens_deleted ON oauth_tokens;
DROP TRIGGER oauth_tokens_revoked ON oauth_tokens;
