-- +goose Up
-- oidc_login_states are sign-ins started with the OpenID provider and not
-- finished yet (internal/sso): the state parameter's hash, the hash of the
-- browser cookie that started it, the nonce and PKCE verifier to check the
-- answer with, and where to go after. A row is deleted when the callback
-- takes it, so a state is used once on every replica sharing the database;
-- rows that expire unused are dropped by the next sign-in. Times are
-- microseconds.
CREATE TABLE oidc_login_states (
    state_hash   TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    return_to    TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX oidc_login_states_expires ON oidc_login_states (expires_at);

-- +goose Down
DROP TABLE oidc_login_states;
