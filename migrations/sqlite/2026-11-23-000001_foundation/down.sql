DROP TABLE audit_events;
DROP TABLE audit_heads;
DROP TABLE clients;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
DROP TABLE tenants;
