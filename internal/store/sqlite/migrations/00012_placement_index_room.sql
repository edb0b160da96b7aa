-- +goose Up
-- PostgreSQL's migration of this number changes its placement index, which
-- SQLite does not have (it places with an index in the process); the
-- version stays the same on both databases.
SELECT 1;

-- +goose Down
SELECT 1;
