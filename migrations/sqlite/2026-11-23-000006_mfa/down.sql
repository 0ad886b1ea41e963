DROP TABLE mfa_passkeys;
DROP TABLE mfa_recovery_codes;
DROP TABLE mfa_totp;
ALTER TABLE users DROP COLUMN sessions_not_before;
