-- +goose Up
-- Organizations can be renamed now (issue 12): updated_at is when, in
-- microseconds. Existing organizations take their creation time. An ADD
-- COLUMN, not a table rebuild: no trigger of 00020 is touched.
ALTER TABLE organizations ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE organizations SET updated_at = created_at;

-- +goose Down
ALTER TABLE organizations DROP COLUMN updated_at;
