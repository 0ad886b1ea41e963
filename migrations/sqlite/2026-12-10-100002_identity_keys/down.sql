ALTER TABLE oidc_identities DROP COLUMN subject_sealed;
ALTER TABLE saml_identities DROP COLUMN name_id_sealed;
