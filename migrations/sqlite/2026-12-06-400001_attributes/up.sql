-- User attributes: a typed schema per tenant and the values per user (docs/authorization.md).
-- A value is JSON of the declared type, checked by the store before it is written. For a
-- unique attribute, unique_key holds the canonical value, so the database refuses a second
-- user with it (NULLs never collide, on SQLite and PostgreSQL alike).

CREATE TABLE attribute_defs (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    label       TEXT,
    kind        TEXT NOT NULL,
    required    BOOLEAN NOT NULL,
    is_unique   BOOLEAN NOT NULL,
    editable_by TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE user_attributes (
    tenant_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    unique_key TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, user_id, name),
    UNIQUE (tenant_id, name, unique_key),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, name) REFERENCES attribute_defs (tenant_id, name) ON DELETE CASCADE
);
