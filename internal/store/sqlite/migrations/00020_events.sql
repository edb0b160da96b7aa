-- +goose Up
-- events is the change feed (gitpod.v1 EventService/WatchEvents): an outbox
-- written by triggers in the same transaction as the change, so that every
-- write path records its events and none records one for a change that
-- rolled back. id is the feed's position; AUTOINCREMENT never reuses an id,
-- even after pruning emptied the table, and SQLite's one writer commits ids
-- in order. environment_id is set for an environment and its services,
-- tasks and executions (the environment scope of WatchEvents); owner is the
-- user or service account a secret belongs to ('' for the organization's).
-- Renewals (last_seen), epochs and lost_at change no event: only a runner's
-- name, spec, status or phase do (RESOURCE_OPERATION_UPDATE for what the
-- user asked, RESOURCE_OPERATION_UPDATE_STATUS for what the runner reports).
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    operation      TEXT NOT NULL,
    environment_id TEXT NOT NULL DEFAULT '',
    owner          TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL
);
CREATE INDEX events_created ON events (created_at);

-- +goose StatementBegin
CREATE TRIGGER runners_event_insert AFTER INSERT ON runners BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_RUNNER', NEW.id, 'RESOURCE_OPERATION_CREATE',
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER runners_event_update AFTER UPDATE ON runners
WHEN OLD.name IS NOT NEW.name OR OLD.spec IS NOT NEW.spec OR OLD.status IS NOT NEW.status
    OR OLD.phase IS NOT NEW.phase OR OLD.deleted_at IS NOT NEW.deleted_at BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_RUNNER', NEW.id,
        CASE WHEN OLD.deleted_at = 0 AND NEW.deleted_at > 0 THEN 'RESOURCE_OPERATION_DELETE'
             WHEN OLD.name IS NOT NEW.name OR OLD.spec IS NOT NEW.spec THEN 'RESOURCE_OPERATION_UPDATE'
             ELSE 'RESOURCE_OPERATION_UPDATE_STATUS' END,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER runners_event_delete AFTER DELETE ON runners WHEN OLD.deleted_at = 0 BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_RUNNER', OLD.id, 'RESOURCE_OPERATION_DELETE',
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER environments_event_insert AFTER INSERT ON environments BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ENVIRONMENT', NEW.id, 'RESOURCE_OPERATION_CREATE', NEW.id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER environments_event_update AFTER UPDATE ON environments
WHEN OLD.name IS NOT NEW.name OR OLD.spec IS NOT NEW.spec OR OLD.status IS NOT NEW.status
    OR OLD.phase IS NOT NEW.phase BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ENVIRONMENT', NEW.id,
        CASE WHEN OLD.name IS NOT NEW.name OR OLD.spec IS NOT NEW.spec THEN 'RESOURCE_OPERATION_UPDATE'
             ELSE 'RESOURCE_OPERATION_UPDATE_STATUS' END, NEW.id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER environments_event_delete AFTER DELETE ON environments BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_ENVIRONMENT', OLD.id, 'RESOURCE_OPERATION_DELETE', OLD.id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER automation_services_event_insert AFTER INSERT ON automation_services BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_SERVICE', NEW.id, 'RESOURCE_OPERATION_CREATE', NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER automation_services_event_update AFTER UPDATE ON automation_services
WHEN OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description OR OLD.role IS NOT NEW.role
    OR OLD.triggered_by IS NOT NEW.triggered_by OR OLD.spec IS NOT NEW.spec OR OLD.status IS NOT NEW.status BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_SERVICE', NEW.id,
        CASE WHEN OLD.status IS NOT NEW.status AND OLD.name IS NEW.name AND OLD.description IS NEW.description
                  AND OLD.role IS NEW.role AND OLD.triggered_by IS NEW.triggered_by AND OLD.spec IS NEW.spec
             THEN 'RESOURCE_OPERATION_UPDATE_STATUS' ELSE 'RESOURCE_OPERATION_UPDATE' END, NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER automation_services_event_delete AFTER DELETE ON automation_services BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_SERVICE', OLD.id, 'RESOURCE_OPERATION_DELETE', OLD.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER automation_tasks_event_insert AFTER INSERT ON automation_tasks BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_TASK', NEW.id, 'RESOURCE_OPERATION_CREATE', NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER automation_tasks_event_update AFTER UPDATE ON automation_tasks
WHEN OLD.name IS NOT NEW.name OR OLD.description IS NOT NEW.description OR OLD.reference IS NOT NEW.reference
    OR OLD.triggered_by IS NOT NEW.triggered_by OR OLD.depends_on IS NOT NEW.depends_on OR OLD.spec IS NOT NEW.spec BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_TASK', NEW.id, 'RESOURCE_OPERATION_UPDATE', NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER automation_tasks_event_delete AFTER DELETE ON automation_tasks BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_TASK', OLD.id, 'RESOURCE_OPERATION_DELETE', OLD.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER task_executions_event_insert AFTER INSERT ON task_executions BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_TASK_EXECUTION', NEW.id, 'RESOURCE_OPERATION_CREATE', NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER task_executions_event_update AFTER UPDATE ON task_executions
WHEN OLD.spec IS NOT NEW.spec OR OLD.status IS NOT NEW.status OR OLD.phase IS NOT NEW.phase BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_TASK_EXECUTION', NEW.id,
        CASE WHEN OLD.spec IS NOT NEW.spec THEN 'RESOURCE_OPERATION_UPDATE'
             ELSE 'RESOURCE_OPERATION_UPDATE_STATUS' END, NEW.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER task_executions_event_delete AFTER DELETE ON task_executions BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_TASK_EXECUTION', OLD.id, 'RESOURCE_OPERATION_DELETE', OLD.environment_id,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER secrets_event_insert AFTER INSERT ON secrets BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_SECRET', NEW.id, 'RESOURCE_OPERATION_CREATE',
        CASE WHEN NEW.scope_kind IN ('user', 'service_account') THEN NEW.scope_id ELSE '' END,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER secrets_event_update AFTER UPDATE ON secrets BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_SECRET', NEW.id, 'RESOURCE_OPERATION_UPDATE',
        CASE WHEN NEW.scope_kind IN ('user', 'service_account') THEN NEW.scope_id ELSE '' END,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER secrets_event_delete AFTER DELETE ON secrets BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_SECRET', OLD.id, 'RESOURCE_OPERATION_DELETE',
        CASE WHEN OLD.scope_kind IN ('user', 'service_account') THEN OLD.scope_id ELSE '' END,
        CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER secrets_event_delete;
DROP TRIGGER secrets_event_update;
DROP TRIGGER secrets_event_insert;
DROP TRIGGER task_executions_event_delete;
DROP TRIGGER task_executions_event_update;
DROP TRIGGER task_executions_event_insert;
DROP TRIGGER automation_tasks_event_delete;
DROP TRIGGER automation_tasks_event_update;
DROP TRIGGER automation_tasks_event_insert;
DROP TRIGGER automation_services_event_delete;
DROP TRIGGER automation_services_event_update;
DROP TRIGGER automation_services_event_insert;
DROP TRIGGER environments_event_delete;
DROP TRIGGER environments_event_update;
DROP TRIGGER environments_event_insert;
DROP TRIGGER runners_event_delete;
DROP TRIGGER runners_event_update;
DROP TRIGGER runners_event_insert;
DROP TABLE events;
