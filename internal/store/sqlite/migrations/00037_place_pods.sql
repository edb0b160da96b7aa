-- +goose Up
-- PostgreSQL's migration of this number adds the function that places a
-- batch of pods in one statement; SQLite places with an index in the
-- process. The version stays the same on both databases.
SELECT 1;

-- +goose Down
SELECT 1;
