-- +goose Up
-- An environment's automations (internal/automations). Specs, statuses and
-- plans are JSON documents; the columns lists filter on are real columns.
-- Every row belongs to its environment and goes with it (ON DELETE
-- CASCADE), so DeleteEnvironment and DeleteRunnerEnvironments need not know
-- these tables. References are unique per environment in each table; the
-- domain keeps them unique across services and tasks, except that a service
-- being deleted keeps its reference while a task may already take it.
CREATE TABLE automation_services (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    environment_id    TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    reference         TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    role              TEXT NOT NULL,
    triggered_by      TEXT NOT NULL DEFAULT '[]',
    spec              TEXT NOT NULL,
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (environment_id, reference)
);
CREATE INDEX automation_services_org_seq ON automation_services (org_id, seq);

CREATE TABLE automation_tasks (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    environment_id    TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    reference         TEXT NOT NULL,
    name              TEXT NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    triggered_by      TEXT NOT NULL DEFAULT '[]',
    depends_on        TEXT NOT NULL DEFAULT '[]',
    spec              TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    UNIQUE (environment_id, reference)
);
CREATE INDEX automation_tasks_org_seq ON automation_tasks (org_id, seq);

-- task_id has no foreign key: an execution outlives its task (it carries
-- the task's spec in its plan), and task_reference keeps the task's
-- reference for the taskReferences filter.
CREATE TABLE task_executions (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    environment_id    TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    task_id           TEXT NOT NULL,
    task_reference    TEXT NOT NULL,
    phase             TEXT NOT NULL,
    started_by        TEXT NOT NULL DEFAULT '',
    spec              TEXT NOT NULL,
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    completed_at      BIGINT
);
CREATE INDEX task_executions_org_seq ON task_executions (org_id, seq);
CREATE INDEX task_executions_environment ON task_executions (environment_id, seq);
CREATE INDEX task_executions_task ON task_executions (org_id, task_id);

-- +goose Down
DROP TABLE task_executions;
DROP TABLE automation_tasks;
DROP TABLE automation_services;
