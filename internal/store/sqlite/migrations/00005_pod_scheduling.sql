-- +goose Up
-- What a pod runs (its run spec, resolved at creation), the environment its
-- creator added, and what its runner is to do with it. desired_status is
-- 'terminated' once a user asked a placed pod to end.
ALTER TABLE pods ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pods ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';
ALTER TABLE pods ADD COLUMN desired_status TEXT NOT NULL DEFAULT 'running';
-- The scheduler looks for pending pods without a runner.
CREATE INDEX pods_unplaced ON pods (status, runner_id);

-- Custom agent types of an organization; the built-in ones live in code.
CREATE TABLE agent_types (
    org_id     TEXT NOT NULL REFERENCES organizations (id),
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    command    TEXT NOT NULL,
    env        TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- +goose Down
DROP TABLE agent_types;
DROP INDEX pods_unplaced;
ALTER TABLE pods DROP COLUMN desired_status;
ALTER TABLE pods DROP COLUMN spec;
ALTER TABLE pods DROP COLUMN env;
