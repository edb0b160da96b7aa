-- +goose Up
-- Which control-plane replica holds each connected runner's stream, so that
-- a replica asked for a pod's terminal or a log of a runner connected to
-- another can relay the request there (internal/replicaproxy). A replica writes
-- its row when a stream starts and removes it when the stream ends; one
-- that stopped without removing it is corrected by the next connection.
CREATE TABLE runner_sessions (
    runner_id TEXT PRIMARY KEY,
    org_id    TEXT NOT NULL,
    replica   TEXT NOT NULL,
    since     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE runner_sessions;
