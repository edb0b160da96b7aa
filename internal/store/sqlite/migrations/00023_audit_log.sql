-- +goose Up
-- audit_log records every mutating API call: who (principal, subject, key,
-- user once users exist), what (method, object), when, from where, and its
-- outcome ('ok' or the error code). A call that commits writes its row in
-- the transaction of its change (sqlstore.DB.tx); a call refused before any
-- transaction writes its row alone. No request body is ever stored: only ids.
-- Rows are never changed: UPDATE is refused; DELETE is the retention prune.
CREATE TABLE audit_log (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
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
    created_at      INTEGER NOT NULL
);
CREATE INDEX audit_log_org ON audit_log (org_id, seq);
CREATE INDEX audit_log_created ON audit_log (created_at);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TABLE audit_log;
