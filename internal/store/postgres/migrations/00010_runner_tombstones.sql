-- +goose Up
-- A deleted runner stays as a tombstone (deleted_at > 0, phase
-- RUNNER_PHASE_DELETED) until it is purged, so that a client can read that
-- it was deleted. Its name must be free at once, so uniqueness of
-- (org_id, name) holds among the runners that are not deleted only: a
-- partial unique index instead of the table's UNIQUE constraint.
-- deleted_at is when the runner was deleted (microseconds); 0 while it
-- exists.
ALTER TABLE runners ADD COLUMN deleted_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runners DROP CONSTRAINT runners_org_id_name_key;
CREATE UNIQUE INDEX runners_org_name ON runners (org_id, name) WHERE deleted_at = 0;
-- The purge of expired tombstones reads this index.
CREATE INDEX runners_deleted ON runners (deleted_at) WHERE deleted_at > 0;

-- +goose Down
-- Tombstones would break the table constraint; they go first. They have
-- no exchange tokens (deleted with them), but one that slipped through
-- would block the DELETE.
DELETE FROM exchange_tokens WHERE runner_id IN (SELECT id FROM runners WHERE deleted_at > 0);
DELETE FROM runners WHERE deleted_at > 0;
DROP INDEX runners_deleted;
DROP INDEX runners_org_name;
ALTER TABLE runners ADD CONSTRAINT runners_org_id_name_key UNIQUE (org_id, name);
ALTER TABLE runners DROP COLUMN deleted_at;
