DROP TABLE audit_events;
DROP TABLE audit_heads;
DROP TABLE admin_tokens;
DROP TABLE clients;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
DROP TABLE tenants;
