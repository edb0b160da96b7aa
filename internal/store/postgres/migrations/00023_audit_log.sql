-- +goose Up
-- audit_log records every mutating API call: who (principal, subject, key,
-- user once users exist), what (method, object), when, from where, and its
-- outcome ('ok' or the error code). A call that commits writes its row in
-- the transaction of its change (sqlstore.DB.tx); a call refused before any
-- transaction writes its row alone. No request body is ever stored: only ids.
CREATE TABLE audit_log (
    seq             BIGSERIAL PRIMARY KEY,
    org_id          TEXT NOT NULL,
    actor_principal TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    key_id          TEXT NOT NULL,
    user_id         TEXT NOT NULL DEFAULT '',
    surface         TEXT NOT NULL,
    method          TEXT NOT NULL,
    object_type     TEXT NOT NULL,
    object_id       TEXT NOT NULL,
    client_ip       TEXT NOT NULL,
    user_agent      TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_created ON audit_log (created_at);

-- Append-only, for every role the control plane connects as: UPDATE is
-- always refused, DELETE only inside the retention prune's transaction,
-- which sets runyard.audit_prune locally (sqlstore.PruneAudit).
-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('runyard.audit_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
