-- +goose Up
-- events is the change feed (gitpod.v1 EventService/WatchEvents): an outbox
-- written by triggers in the same transaction as the change, so that every
-- write path records its events and none records one for a change that
-- rolled back. id is the feed's position. Ids are drawn before commit, so
-- concurrent transactions may commit them out of order: a reader that sees
-- a gap waits until no transaction that started before its read still
-- holds a lock on events before it passes the gap (sqlstore.EventsSettled,
-- internal/events). The trigger
-- also sends NOTIFY runyard_events, delivered at commit, which wakes every
-- replica's reader. environment_id is set for an environment and its
-- services, tasks and executions (the environment scope of WatchEvents);
-- owner is the user or service account a secret belongs to ('' for the
-- organization's). Renewals (last_seen), epochs and lost_at change no event:
-- only a runner's name, spec, status, phase or deletion do.
CREATE TABLE events (
    id             BIGSERIAL PRIMARY KEY,
    org_id         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    operation      TEXT NOT NULL,
    environment_id TEXT NOT NULL DEFAULT '',
    owner          TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);
CREATE INDEX events_created ON events (created_at);

-- runyard_event(resource type, operation, where the environment id or the
-- owner comes from: 'self', 'column', 'owner' or 'none'). Which operation an
-- UPDATE is (a user's change or a status report) is told by the triggers'
-- WHEN clauses, so the function stays generic.
-- +goose StatementBegin
CREATE FUNCTION runyard_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    env text := '';
    own text := '';
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_ARGV[2] = 'self' THEN
        env := r.id;
    ELSIF TG_ARGV[2] = 'column' THEN
        env := r.environment_id;
    ELSIF TG_ARGV[2] = 'owner' THEN
        IF r.scope_kind IN ('user', 'service_account') THEN own := r.scope_id; END IF;
    END IF;
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, owner, created_at)
    VALUES (r.org_id, TG_ARGV[0], r.id, TG_ARGV[1], env, own,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    PERFORM pg_notify('runyard_events', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER runners_event_insert AFTER INSERT ON runners FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_RUNNER', 'RESOURCE_OPERATION_CREATE', 'none');
CREATE TRIGGER runners_event_delete AFTER UPDATE ON runners FOR EACH ROW
    WHEN (OLD.deleted_at = 0 AND NEW.deleted_at > 0)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_RUNNER', 'RESOURCE_OPERATION_DELETE', 'none');
CREATE TRIGGER runners_event_update AFTER UPDATE ON runners FOR EACH ROW
    WHEN (NOT (OLD.deleted_at = 0 AND NEW.deleted_at > 0)
        AND (OLD.name IS DISTINCT FROM NEW.name OR OLD.spec IS DISTINCT FROM NEW.spec))
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_RUNNER', 'RESOURCE_OPERATION_UPDATE', 'none');
CREATE TRIGGER runners_event_update_status AFTER UPDATE ON runners FOR EACH ROW
    WHEN (NOT (OLD.deleted_at = 0 AND NEW.deleted_at > 0)
        AND OLD.name IS NOT DISTINCT FROM NEW.name AND OLD.spec IS NOT DISTINCT FROM NEW.spec
        AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.phase IS DISTINCT FROM NEW.phase))
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_RUNNER', 'RESOURCE_OPERATION_UPDATE_STATUS', 'none');
CREATE TRIGGER runners_event_purge AFTER DELETE ON runners FOR EACH ROW
    WHEN (OLD.deleted_at = 0)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_RUNNER', 'RESOURCE_OPERATION_DELETE', 'none');

CREATE TRIGGER environments_event_insert AFTER INSERT ON environments FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_ENVIRONMENT', 'RESOURCE_OPERATION_CREATE', 'self');
CREATE TRIGGER environments_event_update AFTER UPDATE ON environments FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.spec IS DISTINCT FROM NEW.spec)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_ENVIRONMENT', 'RESOURCE_OPERATION_UPDATE', 'self');
CREATE TRIGGER environments_event_update_status AFTER UPDATE ON environments FOR EACH ROW
    WHEN (OLD.name IS NOT DISTINCT FROM NEW.name AND OLD.spec IS NOT DISTINCT FROM NEW.spec
        AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.phase IS DISTINCT FROM NEW.phase))
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_ENVIRONMENT', 'RESOURCE_OPERATION_UPDATE_STATUS', 'self');
CREATE TRIGGER environments_event_delete AFTER DELETE ON environments FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_ENVIRONMENT', 'RESOURCE_OPERATION_DELETE', 'self');

CREATE TRIGGER automation_services_event_insert AFTER INSERT ON automation_services FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SERVICE', 'RESOURCE_OPERATION_CREATE', 'column');
CREATE TRIGGER automation_services_event_update AFTER UPDATE ON automation_services FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.description IS DISTINCT FROM NEW.description
        OR OLD.role IS DISTINCT FROM NEW.role OR OLD.triggered_by IS DISTINCT FROM NEW.triggered_by
        OR OLD.spec IS DISTINCT FROM NEW.spec)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SERVICE', 'RESOURCE_OPERATION_UPDATE', 'column');
CREATE TRIGGER automation_services_event_update_status AFTER UPDATE ON automation_services FOR EACH ROW
    WHEN (OLD.name IS NOT DISTINCT FROM NEW.name AND OLD.description IS NOT DISTINCT FROM NEW.description
        AND OLD.role IS NOT DISTINCT FROM NEW.role AND OLD.triggered_by IS NOT DISTINCT FROM NEW.triggered_by
        AND OLD.spec IS NOT DISTINCT FROM NEW.spec AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SERVICE', 'RESOURCE_OPERATION_UPDATE_STATUS', 'column');
CREATE TRIGGER automation_services_event_delete AFTER DELETE ON automation_services FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SERVICE', 'RESOURCE_OPERATION_DELETE', 'column');

CREATE TRIGGER automation_tasks_event_insert AFTER INSERT ON automation_tasks FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK', 'RESOURCE_OPERATION_CREATE', 'column');
CREATE TRIGGER automation_tasks_event_update AFTER UPDATE ON automation_tasks FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.description IS DISTINCT FROM NEW.description
        OR OLD.reference IS DISTINCT FROM NEW.reference OR OLD.triggered_by IS DISTINCT FROM NEW.triggered_by
        OR OLD.depends_on IS DISTINCT FROM NEW.depends_on OR OLD.spec IS DISTINCT FROM NEW.spec)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK', 'RESOURCE_OPERATION_UPDATE', 'column');
CREATE TRIGGER automation_tasks_event_delete AFTER DELETE ON automation_tasks FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK', 'RESOURCE_OPERATION_DELETE', 'column');

CREATE TRIGGER task_executions_event_insert AFTER INSERT ON task_executions FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK_EXECUTION', 'RESOURCE_OPERATION_CREATE', 'column');
CREATE TRIGGER task_executions_event_update AFTER UPDATE ON task_executions FOR EACH ROW
    WHEN (OLD.spec IS DISTINCT FROM NEW.spec)
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK_EXECUTION', 'RESOURCE_OPERATION_UPDATE', 'column');
CREATE TRIGGER task_executions_event_update_status AFTER UPDATE ON task_executions FOR EACH ROW
    WHEN (OLD.spec IS NOT DISTINCT FROM NEW.spec
        AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.phase IS DISTINCT FROM NEW.phase))
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK_EXECUTION', 'RESOURCE_OPERATION_UPDATE_STATUS', 'column');
CREATE TRIGGER task_executions_event_delete AFTER DELETE ON task_executions FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_TASK_EXECUTION', 'RESOURCE_OPERATION_DELETE', 'column');

CREATE TRIGGER secrets_event_insert AFTER INSERT ON secrets FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SECRET', 'RESOURCE_OPERATION_CREATE', 'owner');
CREATE TRIGGER secrets_event_update AFTER UPDATE ON secrets FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SECRET', 'RESOURCE_OPERATION_UPDATE', 'owner');
CREATE TRIGGER secrets_event_delete AFTER DELETE ON secrets FOR EACH ROW
    EXECUTE FUNCTION runyard_event('RESOURCE_TYPE_SECRET', 'RESOURCE_OPERATION_DELETE', 'owner');

-- +goose Down
DROP TRIGGER secrets_event_delete ON secrets;
DROP TRIGGER secrets_event_update ON secrets;
DROP TRIGGER secrets_event_insert ON secrets;
DROP TRIGGER task_executions_event_delete ON task_executions;
DROP TRIGGER task_executions_event_update_status ON task_executions;
DROP TRIGGER task_executions_event_update ON task_executions;
DROP TRIGGER task_executions_event_insert ON task_executions;
DROP TRIGGER automation_tasks_event_delete ON automation_tasks;
DROP TRIGGER automation_tasks_event_update ON automation_tasks;
DROP TRIGGER automation_tasks_event_insert ON automation_tasks;
DROP TRIGGER automation_services_event_delete ON automation_services;
DROP TRIGGER automation_services_event_update_status ON automation_services;
DROP TRIGGER automation_services_event_update ON automation_services;
DROP TRIGGER automation_services_event_insert ON automation_services;
DROP TRIGGER environments_event_delete ON environments;
DROP TRIGGER environments_event_update_status ON environments;
DROP TRIGGER environments_event_update ON environments;
DROP TRIGGER environments_event_insert ON environments;
DROP TRIGGER runners_event_purge ON runners;
DROP TRIGGER runners_event_update_status ON runners;
DROP TRIGGER runners_event_update ON runners;
DROP TRIGGER runners_event_delete ON runners;
DROP TRIGGER runners_event_insert ON runners;
DROP FUNCTION runyard_event();
DROP TABLE events;
