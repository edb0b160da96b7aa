-- +goose Up
CREATE TABLE organizations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- tokens holds API keys and runner access tokens; only SHA-256 hashes of the
-- secrets are stored.
CREATE TABLE tokens (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    name              TEXT NOT NULL,
    principal         TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    runner_id         TEXT NOT NULL DEFAULT '',
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    hash              TEXT NOT NULL UNIQUE,
    bootstrap         INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER,
    revoked_at        INTEGER
);
CREATE UNIQUE INDEX tokens_one_bootstrap ON tokens (org_id) WHERE bootstrap = 1;
CREATE INDEX tokens_org_seq ON tokens (org_id, seq);
CREATE INDEX tokens_runner ON tokens (org_id, runner_id);

-- runners: spec and status are JSON documents; the metrics password lives
-- apart from the spec so that no read path can return it by accident.
CREATE TABLE runners (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    runner_manager_id TEXT NOT NULL DEFAULT '',
    spec              TEXT NOT NULL,
    metrics_password  TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (org_id, name)
);
CREATE INDEX runners_org_seq ON runners (org_id, seq);

CREATE TABLE exchange_tokens (
    hash       TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    runner_id  TEXT NOT NULL REFERENCES runners (id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX exchange_tokens_runner ON exchange_tokens (org_id, runner_id);

-- +goose Down
DROP TABLE exchange_tokens;
DROP TABLE runners;
DROP TABLE tokens;
DROP TABLE organizations;
