-- +goose Up
CREATE TABLE pods (
    seq            BIGSERIAL PRIMARY KEY,
    key            TEXT NOT NULL UNIQUE,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    runner_id      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    agent_type_id  TEXT NOT NULL,
    initial_prompt TEXT NOT NULL DEFAULT '',
    labels         TEXT NOT NULL DEFAULT '[]',
    workdir        TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    exit_code      BIGINT,
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT
);
CREATE INDEX pods_runner ON pods (org_id, runner_id, status);

-- +goose Down
DROP TABLE pods;
