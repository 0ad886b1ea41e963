DROP TABLE tenant_domains;
