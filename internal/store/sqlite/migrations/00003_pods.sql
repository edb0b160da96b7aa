-- +goose Up
CREATE TABLE pods (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    key            TEXT NOT NULL UNIQUE,
    org_id         TEXT NOT NULL REFERENCES organizations (id),
    runner_id      TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    agent_type_id  TEXT NOT NULL,
    initial_prompt TEXT NOT NULL DEFAULT '',
    labels         TEXT NOT NULL DEFAULT '[]',
    workdir        TEXT NOT NULL DEFAULT '',
    reason         TEXT NOT NULL DEFAULT '',
    exit_code      INTEGER,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER
);
CREATE INDEX pods_runner ON pods (org_id, runner_id, status);

-- +goose Down
DROP TABLE pods;
