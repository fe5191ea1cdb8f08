-- Users, their roles and extra claims, and API keys. `{prefix}` is the table prefix
-- (SqlOptions::prefix, default `tjl_`). Times are Unix seconds.

CREATE TABLE {prefix}users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    -- Argon2id PHC string.
    password_hash TEXT    NOT NULL,
    -- The hash's cost (m × t, and m): the costliest hash is one index probe away (the dummy
    -- hash an unknown name is checked against imitates it).
    hash_work     BIGINT  NOT NULL,
    hash_memory   BIGINT  NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    -- Extra claims of the user's tokens besides `roles`: a JSON object, or NULL.
    claims        TEXT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

CREATE INDEX {prefix}users_hash_cost ON {prefix}users (hash_work DESC, hash_memory DESC);

CREATE TABLE {prefix}user_roles (
    user_id BIGINT NOT NULL REFERENCES {prefix}users (id) ON DELETE CASCADE,
    role    TEXT   NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE {prefix}api_keys (
    id           TEXT   PRIMARY KEY,
    -- The owner: the subject of the tokens the key is exchanged for.
    subject      TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    -- SHA-256 of the key, lowercase hex: the key itself is never stored.
    key_hash     TEXT   NOT NULL UNIQUE,
    -- The roles the key's tokens may carry, a JSON array; NULL: all the owner's.
    roles        TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);

CREATE INDEX {prefix}api_keys_subject ON {prefix}api_keys (subject, created_at);
