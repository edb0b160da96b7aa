-- +goose Up
-- Activity of an environment (MarkEnvironmentActive, starts) and the time
-- after which an environment with spec.timeout.disconnected is stopped for
-- inactivity. stop_after is NULL unless the environment should run and has
-- a timeout; the inactivity sweep reads only those rows, through the index.
ALTER TABLE environments ADD COLUMN last_activity_at BIGINT;
ALTER TABLE environments ADD COLUMN activity_source TEXT NOT NULL DEFAULT '';
ALTER TABLE environments ADD COLUMN stop_after BIGINT;
CREATE INDEX environments_stop_after ON environments (stop_after) WHERE stop_after IS NOT NULL;

-- +goose Down
DROP INDEX environments_stop_after;
ALTER TABLE environments DROP COLUMN stop_after;
ALTER TABLE environments DROP COLUMN activity_source;
ALTER TABLE environments DROP COLUMN last_activity_at;
