-- +goose Up
-- The web console's live pages beyond runners, environments and secrets
-- (see the SQLite migration of the same number for the kinds and who sees
-- them). runyard_event needs id and org_id columns, which these tables
-- name differently, so one function takes the columns to read by name.
-- runyard_console_event(resource type, org column, id column, owner
-- column or '').
-- +goose StatementBegin
CREATE FUNCTION runyard_console_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    op text;
BEGIN
    IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); op := 'RESOURCE_OPERATION_DELETE';
    ELSIF TG_OP = 'INSERT' THEN r := to_jsonb(NEW); op := 'RESOURCE_OPERATION_CREATE';
    ELSE r := to_jsonb(NEW); op := 'RESOURCE_OPERATION_UPDATE';
    END IF;
    INSERT INTO events (org_id, resource_type, resource_id, operation, owner, created_at)
    VALUES (r->>TG_ARGV[1], TG_ARGV[0], r->>TG_ARGV[2], op,
        CASE WHEN TG_ARGV[3] = '' THEN '' ELSE COALESCE(r->>TG_ARGV[3], '') END,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER pods_event_insert AFTER INSERT ON pods FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT_EXECUTION', 'org_id', 'key', '');
CREATE TRIGGER pods_event_update AFTER UPDATE ON pods FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.desired_status IS DISTINCT FROM NEW.desired_status
        OR OLD.runner_id IS DISTINCT FROM NEW.runner_id OR OLD.reason IS DISTINCT FROM NEW.reason
        OR OLD.exit_code IS DISTINCT FROM NEW.exit_code OR OLD.labels IS DISTINCT FROM NEW.labels)
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT_EXECUTION', 'org_id', 'key', '');
CREATE TRIGGER pods_event_delete AFTER DELETE ON pods FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT_EXECUTION', 'org_id', 'key', '');
CREATE TRIGGER agent_types_event_insert AFTER INSERT ON agent_types FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT', 'org_id', 'id', '');
CREATE TRIGGER agent_types_event_update AFTER UPDATE ON agent_types FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT', 'org_id', 'id', '');
CREATE TRIGGER agent_types_event_delete AFTER DELETE ON agent_types FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AGENT', 'org_id', 'id', '');
CREATE TRIGGER organizations_event_insert AFTER INSERT ON organizations FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'id', 'id', '');
CREATE TRIGGER organizations_event_update AFTER UPDATE ON organizations FOR EACH ROW
    WHEN (OLD.name IS DISTINCT FROM NEW.name)
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'id', 'id', '');
CREATE TRIGGER organizations_event_delete AFTER DELETE ON organizations FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'id', 'id', '');
CREATE TRIGGER memberships_event_insert AFTER INSERT ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'user_id', '');
CREATE TRIGGER memberships_user_event_insert AFTER INSERT ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_USER', 'org_id', 'user_id', 'user_id');
CREATE TRIGGER memberships_event_update AFTER UPDATE ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'user_id', '');
CREATE TRIGGER memberships_user_event_update AFTER UPDATE ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_USER', 'org_id', 'user_id', 'user_id');
CREATE TRIGGER memberships_event_delete AFTER DELETE ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'user_id', '');
CREATE TRIGGER memberships_user_event_delete AFTER DELETE ON memberships FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_USER', 'org_id', 'user_id', 'user_id');
CREATE TRIGGER invites_event_insert AFTER INSERT ON invites FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'id', '');
CREATE TRIGGER invites_event_update AFTER UPDATE ON invites FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'id', '');
CREATE TRIGGER invites_event_delete AFTER DELETE ON invites FOR EACH ROW
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_ORGANIZATION', 'org_id', 'id', '');
CREATE TRIGGER tokens_event_insert AFTER INSERT ON tokens FOR EACH ROW
    WHEN (NEW.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT'))
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', 'org_id', 'id', 'owner_user_id');
CREATE TRIGGER tokens_event_update AFTER UPDATE ON tokens FOR EACH ROW
    WHEN (NEW.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT') AND (OLD.name IS DISTINCT FROM NEW.name
        OR OLD.revoked_at IS DISTINCT FROM NEW.revoked_at OR OLD.expires_at IS DISTINCT FROM NEW.expires_at
        OR OLD.scopes IS DISTINCT FROM NEW.scopes))
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', 'org_id', 'id', 'owner_user_id');
CREATE TRIGGER tokens_event_delete AFTER DELETE ON tokens FOR EACH ROW
    WHEN (OLD.principal IN ('PRINCIPAL_USER', 'PRINCIPAL_SERVICE_ACCOUNT'))
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_PERSONAL_ACCESS_TOKEN', 'org_id', 'id', 'owner_user_id');
CREATE TRIGGER audit_log_event_insert AFTER INSERT ON audit_log FOR EACH ROW
    WHEN (NEW.org_id <> '')
    EXECUTE FUNCTION runyard_console_event('RESOURCE_TYPE_AUDIT_LOG', 'org_id', 'seq', '');

-- +goose Down
DROP TRIGGER pods_event_insert ON pods;
DROP TRIGGER pods_event_update ON pods;
DROP TRIGGER pods_event_delete ON pods;
DROP TRIGGER agent_types_event_insert ON agent_types;
DROP TRIGGER agent_types_event_update ON agent_types;
DROP TRIGGER agent_types_event_delete ON agent_types;
DROP TRIGGER organizations_event_insert ON organizations;
DROP TRIGGER organizations_event_update ON organizations;
DROP TRIGGER organizations_event_delete ON organizations;
DROP TRIGGER memberships_event_insert ON memberships;
DROP TRIGGER memberships_user_event_insert ON memberships;
DROP TRIGGER memberships_event_update ON memberships;
DROP TRIGGER memberships_user_event_update ON memberships;
DROP TRIGGER memberships_event_delete ON memberships;
DROP TRIGGER memberships_user_event_delete ON memberships;
DROP TRIGGER invites_event_insert ON invites;
DROP TRIGGER invites_event_update ON invites;
DROP TRIGGER invites_event_delete ON invites;
DROP TRIGGER tokens_event_insert ON tokens;
DROP TRIGGER tokens_event_update ON tokens;
DROP TRIGGER tokens_event_delete ON tokens;
DROP TRIGGER audit_log_event_insert ON audit_log;
DROP FUNCTION runyard_console_event();
