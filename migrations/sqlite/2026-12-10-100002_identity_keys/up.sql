-- Crypto-shredding (docs/privacy.md#erasure): a linked identity's subject (a SAML NameID is
-- often an email address) sealed under the user's key; the subject column then holds a blind
-- index, so sign-in lookups and the primary key work without plaintext.
ALTER TABLE saml_identities ADD COLUMN name_id_sealed TEXT;
ALTER TABLE oidc_identities ADD COLUMN subject_sealed TEXT;
