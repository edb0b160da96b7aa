-- +goose Up
-- phase and last_seen are columns, not part of the status document, so that
-- renewals are one cheap UPDATE and the sweep for silent runners is one query.
ALTER TABLE runners ADD COLUMN phase TEXT NOT NULL DEFAULT 'RUNNER_PHASE_CREATED';
ALTER TABLE runners ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
-- report is the daemon's last report about its host (labels, max pods,
-- components, ...), a JSON document.
ALTER TABLE runners ADD COLUMN report TEXT NOT NULL DEFAULT '{}';
UPDATE runners SET phase = COALESCE(status::jsonb ->> 'phase', 'RUNNER_PHASE_CREATED');
CREATE INDEX runners_liveness ON runners (phase, last_seen);

-- +goose Down
DROP INDEX runners_liveness;
ALTER TABLE runners DROP COLUMN report;
ALTER TABLE runners DROP COLUMN last_seen;
ALTER TABLE runners DROP COLUMN phase;
