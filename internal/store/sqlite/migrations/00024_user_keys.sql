-- +goose Up
-- Users own API keys and join organizations by invitation (issue 12).
--
-- owner_user_id is the user an API key belongs to ('' for a service
-- account's key, which every key from before this migration is: they keep
-- working unchanged). A user's key authenticates only while its owner is
-- enabled and a member of the key's organization, with the scopes its
-- owner's role still grants.
ALTER TABLE tokens ADD COLUMN owner_user_id TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_owner ON tokens (owner_user_id);

-- installation_admin marks users who manage the installation (every
-- organization, every user), as the bootstrap admin key's holder does.
ALTER TABLE users ADD COLUMN installation_admin BOOLEAN NOT NULL DEFAULT FALSE;

-- invites are one-time tokens to join an organization with a role; only
-- the SHA-256 hash of the token is stored. used_at (microseconds, 0 while
-- unused) and used_by record the one redemption.
CREATE TABLE invites (
    hash       TEXT PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    role       TEXT NOT NULL,
    creator_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0,
    used_by    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX invites_org ON invites (org_id);

-- +goose Down
DROP TABLE invites;
ALTER TABLE users DROP COLUMN installation_admin;
DROP INDEX tokens_owner;
ALTER TABLE tokens DROP COLUMN owner_user_id;
