-- +goose Up
-- environments: spec and status are JSON documents; the columns lists filter
-- on are real columns. runner_id has no foreign key: a runner's deletion
-- removes its environments in the domain (environments.Service.RunnerDeleted)
-- after its daemon stopped them, and runners are deleted by code that knows
-- nothing of environments. runner_kind is copied from the runner, whose kind
-- never changes, for the runnerKinds filter.
CREATE TABLE environments (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    runner_id         TEXT NOT NULL,
    runner_kind       TEXT NOT NULL,
    name              TEXT NOT NULL,
    context_url       TEXT NOT NULL DEFAULT '',
    phase             TEXT NOT NULL,
    spec              TEXT NOT NULL,
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    last_started_at   BIGINT
);
CREATE INDEX environments_org_seq ON environments (org_id, seq);
CREATE INDEX environments_runner ON environments (org_id, runner_id);

-- +goose Down
DROP TABLE environments;
