-- +goose Up
-- Nothing on SQLite: one control-plane process writes the file, and its
-- changes reach the runner view in memory without notices (the
-- PostgreSQL migration of the same number notifies the other replicas).
SELECT 1;

-- +goose Down
SELECT 1;
