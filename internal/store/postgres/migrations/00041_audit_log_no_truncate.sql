-- +goose Up
-- TRUNCATE fires no row trigger, so audit_log_append_only (00023) does not
-- see it: a statement trigger refuses it for every role the control plane
-- connects as, the retention prune included (it deletes by age with DELETE).
-- +goose StatementBegin
CREATE FUNCTION audit_log_no_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: TRUNCATE is refused';
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_no_truncate();

-- +goose Down
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP FUNCTION audit_log_no_truncate();
