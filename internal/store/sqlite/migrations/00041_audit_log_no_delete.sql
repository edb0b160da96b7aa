-- +goose Up
-- SQLite has no TRUNCATE (DELETE without WHERE is its form, and a table with
-- a trigger never takes the truncate shortcut), and no session setting like
-- PostgreSQL's runyard.audit_prune: the retention prune opens a gate instead,
-- a row of audit_log_prune inserted and deleted inside its own transaction
-- (sqlstore.PruneAudit). SQLite runs one write transaction at a time and no
-- other connection sees the row, so any DELETE outside the prune is refused.
CREATE TABLE audit_log_prune (
    open INTEGER PRIMARY KEY CHECK (open = 1)
);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN NOT EXISTS (SELECT 1 FROM audit_log_prune)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TABLE audit_log_prune;
