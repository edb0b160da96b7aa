-- +goose Up
-- Where each service and task came from (automations.Source): the
-- repository's automations file ('file'), UpsertAutomationsFile ('upsert') or
-- CreateService/CreateTask ('api'). A file apply reconciles only file and
-- upsert items and never removes an API-created one. Rows from before this
-- migration were made under the old rule, where every apply of the
-- repository's file reconciled everything; they keep that rule ('file') and
-- are managed by the next explicit file apply, never by a runner restart.
ALTER TABLE automation_services ADD COLUMN source TEXT NOT NULL DEFAULT 'file';
ALTER TABLE automation_tasks ADD COLUMN source TEXT NOT NULL DEFAULT 'file';

-- +goose Down
ALTER TABLE automation_tasks DROP COLUMN source;
ALTER TABLE automation_services DROP COLUMN source;
