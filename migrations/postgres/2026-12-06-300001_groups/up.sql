-- Groups, nested groups, group role assignments, and client roles (roles one client defines)
-- assigned to users and groups. A user's effective roles are computed through every group
-- they are in, directly or through nesting (crates/latchkey-store/src/groups.rs).

CREATE TABLE groups (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- A group is in at most one parent group (the key), so the groups form a forest and each has
-- one path (/parent/child). Deleting the parent makes the child a top-level group. The store
-- refuses an edge that would close a cycle.
CREATE TABLE group_parents (
    tenant_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    parent_id  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id),
    CHECK (group_id <> parent_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, parent_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_parents_parent ON group_parents (tenant_id, parent_id);

CREATE TABLE user_groups (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, group_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_groups_group ON user_groups (tenant_id, group_id);

CREATE TABLE group_roles (
    tenant_id  TEXT NOT NULL,
    group_id   TEXT NOT NULL,
    role_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, role_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, role_id) REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_roles_role ON group_roles (tenant_id, role_id);

-- Roles one client (application) defines, such as reports:read of the reporting portal;
-- names are unique per client, and deleting the client deletes its roles.
CREATE TABLE client_roles (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    created_at  BIGINT NOT NULL,
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, client_id, name),
    FOREIGN KEY (tenant_id, client_id) REFERENCES clients (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE user_client_roles (
    tenant_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    client_role_id TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, client_role_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_role_id) REFERENCES client_roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX user_client_roles_role ON user_client_roles (tenant_id, client_role_id);

CREATE TABLE group_client_roles (
    tenant_id      TEXT NOT NULL,
    group_id       TEXT NOT NULL,
    client_role_id TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, client_role_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, client_role_id) REFERENCES client_roles (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_client_roles_role ON group_client_roles (tenant_id, client_role_id);
