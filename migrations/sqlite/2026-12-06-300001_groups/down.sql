DROP TABLE group_client_roles;
DROP TABLE user_client_roles;
DROP TABLE client_roles;
DROP TABLE group_roles;
DROP TABLE user_groups;
DROP TABLE group_parents;
DROP TABLE groups;
