ALTER TABLE password_resets DROP COLUMN browser_hash;
