-- +goose Up
-- users are the installation's local accounts (issue 12). email is stored
-- lowercased and is unique; password_hash is an argon2id PHC string (never
-- the password), '' for an account that cannot sign in with one.
-- disabled_at is when the account was disabled (microseconds), 0 while
-- it is enabled.
CREATE TABLE users (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL DEFAULT '',
    disabled_at   BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- memberships: a user's role in an organization; a user may belong to
-- several organizations, once each.
CREATE TABLE memberships (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- +goose Down
DROP TABLE memberships;
DROP TABLE users;
