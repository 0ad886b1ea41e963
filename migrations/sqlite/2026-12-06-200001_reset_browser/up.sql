-- A reset token works only in the browser that asked for it: the SHA-256 of a random value in
-- that browser's cookie. Tokens from before this column (NULL) no longer work.
ALTER TABLE password_resets ADD COLUMN browser_hash TEXT;
