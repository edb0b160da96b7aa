-- +goose Up
-- browser_sessions are the web console's sign-ins (issue 12, item 5). hash
-- is the SHA-256 of the cookie's secret (never the secret). A session acts
-- for a user in org_id (user_id set) or as an API key (token_id set, and
-- sealed_key holds that key encrypted with a key derived from the cookie's
-- secret, so the row alone opens nothing). idle_expires_at moves with
-- last_seen_at; expires_at is the absolute end. Times are microseconds;
-- revoked_at is 0 while the session is live.
CREATE TABLE browser_sessions (
    id              TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    org_id          TEXT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id         TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_id        TEXT REFERENCES tokens (id) ON DELETE CASCADE,
    sealed_key      TEXT NOT NULL DEFAULT '',
    client_ip       TEXT NOT NULL DEFAULT '',
    user_agent      TEXT NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_expires_at BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires ON browser_sessions (expires_at);

-- sign_in_failures counts an account's consecutive failed password
-- sign-ins; locked_until (microseconds, 0 when not locked) is set when the
-- count reaches the limit. Every replica and every restart sees it. A
-- successful sign-in, or an admin's password reset, deletes the row.
CREATE TABLE sign_in_failures (
    user_id      TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL
);

-- +goose Down
DROP TABLE sign_in_failures;
DROP TABLE browser_sessions;
