-- +goose Up
-- Prebuild schedules (issue 16): a repository prebuilt on the runner of an
-- environment class every interval. next_run_at is claimed by a
-- conditional UPDATE, so that replicas sharing the database create each
-- scheduled prebuild once.
CREATE TABLE prebuild_schedules (
    id                TEXT NOT NULL PRIMARY KEY,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    context_url       TEXT NOT NULL,
    class_id          TEXT NOT NULL,
    interval_seconds  BIGINT NOT NULL,
    next_run_at       BIGINT NOT NULL,
    last_prebuild_id  TEXT NOT NULL DEFAULT '',
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);
CREATE INDEX prebuild_schedules_next ON prebuild_schedules (next_run_at);

-- +goose Down
DROP TABLE prebuild_schedules;
