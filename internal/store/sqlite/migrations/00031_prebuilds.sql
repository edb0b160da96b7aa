-- +goose Up
-- Prebuilds (issue 16): a prebuild of a repository runs in an environment on
-- a runner and leaves a snapshot of its workspace there. The columns lists
-- filter on are real columns; the rest (timeout, failure, snapshot) is a
-- JSON document. Deleting a prebuild keeps its environment's row alone: the
-- prebuilds service retires the environment first.
CREATE TABLE prebuilds (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    runner_id         TEXT NOT NULL,
    context_url       TEXT NOT NULL,
    environment_id    TEXT NOT NULL DEFAULT '',
    phase             TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    triggered_by      TEXT NOT NULL,
    doc               TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX prebuilds_org_seq ON prebuilds (org_id, seq);
CREATE INDEX prebuilds_runner ON prebuilds (runner_id, phase);

-- +goose Down
DROP TABLE prebuilds;
