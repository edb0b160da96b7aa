-- +goose Up
-- user_ssh_keys are users' own SSH public keys (issue 16): such a key logs
-- in to the SSH server as an environment its user may enter. A user holds
-- a key once (fingerprint: its SHA-256 fingerprint); logins find keys by
-- fingerprint. public_key is the authorized_keys form without a comment.
-- created_at is microseconds.
CREATE TABLE user_ssh_keys (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (user_id, fingerprint)
);
CREATE INDEX user_ssh_keys_fingerprint ON user_ssh_keys (fingerprint);

-- +goose Down
DROP TABLE user_ssh_keys;
