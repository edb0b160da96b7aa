-- +goose Up
-- The web console's live pages beyond runners, environments and secrets:
-- pods (RESOURCE_TYPE_AGENT_EXECUTION: an agent's session), agent types
-- (RESOURCE_TYPE_AGENT), the organization itself, its memberships and
-- invites (RESOURCE_TYPE_ORGANIZATION), memberships again for the member's
-- own list of organizations (RESOURCE_TYPE_USER, owner = the member),
-- users' and service accounts' API keys (RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN, owner =
-- the user who owns the key, '' for a service account's) and audit entries
-- (RESOURCE_TYPE_AUDIT_LOG, not a gitpod.v1 type). Like the first kinds,
-- triggers write them in the change's transaction. gitpod.v1 WatchEvents
-- never shows these kinds (internal/events: the vendor documents runners,
-- environments and secrets for the organization scope); the console's feed
-- does, each to the callers whose scopes cover it.
--
-- A pod's row changes on placement, reports and termination only (no
-- heartbeat column), so an event per change costs one insert per write that
-- a page shows anyway.

-- +goose StatementBegin
CREATE TRIGGER pods_event_insert AFTER INSERT ON pods BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_AGENT_EXECUTION', NEW.key, 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER pods_event_update AFTER UPDATE ON pods
WHEN OLD.status IS NOT NEW.status OR OLD.desired_status IS NOT NEW.desired_status
    OR OLD.runner_id IS NOT NEW.runner_id OR OLD.reason IS NOT NEW.reason OR OLD.exit_code IS NOT NEW.exit_code
    OR OLD.labels IS NOT NEW.labels BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_AGENT_EXECUTION', NEW.key, 'RESOURCE_OPERATION_UPDATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER pods_event_delete AFTER DELETE ON pods BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_AGENT_EXECUTION', OLD.key, 'RESOURCE_OPERATION_DELETE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER agent_types_event_insert AFTER INSERT ON agent_types BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_AGENT', NEW.id, 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER agent_types_event_update AFTER UPDATE ON agent_types BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_AGENT', NEW.id, 'RESOURCE_OPERATION_UPDATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER agent_types_event_delete AFTER DELETE ON agent_types BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_AGENT', OLD.id, 'RESOURCE_OPERATION_DELETE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER organizations_event_insert AFTER INSERT ON organizations BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.id, 'RESOURCE_TYPE_ORGANIZATION', NEW.id, 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER organizations_event_update AFTER UPDATE ON organizations
WHEN OLD.name IS NOT NEW.name BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.id, 'RESOURCE_TYPE_ORGANIZATION', NEW.id, 'RESOURCE_OPERATION_UPDATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER organizations_event_delete AFTER DELETE ON organizations BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.id, 'RESOURCE_TYPE_ORGANIZATION', OLD.id, 'RESOURCE_OPERATION_DELETE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER memberships_event_insert AFTER INSERT ON memberships BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ORGANIZATION', NEW.user_id, 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_USER', NEW.user_id, 'RESOURCE_OPERATION_CREATE', NEW.user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER memberships_event_update AFTER UPDATE ON memberships BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ORGANIZATION', NEW.user_id, 'RESOURCE_OPERATION_UPDATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_USER', NEW.user_id, 'RESOURCE_OPERATION_UPDATE', NEW.user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER memberships_event_delete AFTER DELETE ON memberships BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_ORGANIZATION', OLD.user_id, 'RESOURCE_OPERATION_DELETE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_USER', OLD.user_id, 'RESOURCE_OPERATION_DELETE', OLD.user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invites_event_insert AFTER INSERT ON invites BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ORGANIZATION', NEW.id, 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invites_event_update AFTER UPDATE ON invites BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_ORGANIZATION', NEW.id, 'RESOURCE_OPERATION_UPDATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER invites_event_delete AFTER DELETE ON invites BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_ORGANIZATION', OLD.id, 'RESOURCE_OPERATION_DELETE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tokens_event_insert AFTER INSERT ON tokens
WHEN NEW.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT') BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', NEW.id, 'RESOURCE_OPERATION_CREATE', NEW.owner_user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tokens_event_update AFTER UPDATE ON tokens
WHEN NEW.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT') AND (OLD.name IS NOT NEW.name OR OLD.revoked_at IS NOT NEW.revoked_at
    OR OLD.expires_at IS NOT NEW.expires_at OR OLD.scopes IS NOT NEW.scopes) BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', NEW.id, 'RESOURCE_OPERATION_UPDATE', NEW.owner_user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER tokens_event_delete AFTER DELETE ON tokens
WHEN OLD.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT') BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (OLD.org_id, 'RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', OLD.id, 'RESOURCE_OPERATION_DELETE', OLD.owner_user_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_log_event_insert AFTER INSERT ON audit_log
WHEN NEW.org_id <> '' BEGIN
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (NEW.org_id, 'RESOURCE_TYPE_AUDIT_LOG', CAST(NEW.seq AS TEXT), 'RESOURCE_OPERATION_CREATE', '', CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER pods_event_insert;
DROP TRIGGER pods_event_update;
DROP TRIGGER pods_event_delete;
DROP TRIGGER agent_types_event_insert;
DROP TRIGGER agent_types_event_update;
DROP TRIGGER agent_types_event_delete;
DROP TRIGGER organizations_event_insert;
DROP TRIGGER organizations_event_update;
DROP TRIGGER organizations_event_delete;
DROP TRIGGER memberships_event_insert;
DROP TRIGGER memberships_event_update;
DROP TRIGGER memberships_event_delete;
DROP TRIGGER invites_event_insert;
DROP TRIGGER invites_event_update;
DROP TRIGGER invites_event_delete;
DROP TRIGGER tokens_event_insert;
DROP TRIGGER tokens_event_update;
DROP TRIGGER tokens_event_delete;
DROP TRIGGER audit_log_event_insert;
