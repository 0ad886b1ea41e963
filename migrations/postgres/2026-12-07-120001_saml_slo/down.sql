ALTER TABLE saml_connections DROP COLUMN slo_response_url;
ALTER TABLE saml_connections DROP COLUMN slo_url;
