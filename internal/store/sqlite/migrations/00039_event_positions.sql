-- +goose Up
-- PostgreSQL's migration of this number numbers events in commit order
-- after they commit; SQLite's one writer commits ids in order already. The
-- version stays the same on both databases.
SELECT 1;

-- +goose Down
SELECT 1;
