-- +goose Up
-- runner_releases is the runner release each channel (stable, latest)
-- serves (internal/releases): its version, SHA256SUMS and the ed25519
-- signature over it as published, so that a runner checks them with the
-- key it trusts itself. Publishing replaces a channel's row and archives in
-- one transaction. Times are microseconds.
CREATE TABLE runner_releases (
    channel      TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    build_date   TEXT NOT NULL,
    sums         BLOB NOT NULL,
    signature    BLOB NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT NOT NULL
);
-- runner_release_archives are a release's archives, one per platform, with
-- their bytes: every replica serves them from the shared database.
CREATE TABLE runner_release_archives (
    channel TEXT NOT NULL,
    file    TEXT NOT NULL,
    os      TEXT NOT NULL,
    arch    TEXT NOT NULL,
    sha256  TEXT NOT NULL,
    size    BIGINT NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (channel, file)
);

-- +goose Down
DROP TABLE runner_release_archives;
DROP TABLE runner_releases;
