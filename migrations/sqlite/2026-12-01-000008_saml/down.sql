DROP TABLE saml_identities;
DROP TABLE saml_connections;
