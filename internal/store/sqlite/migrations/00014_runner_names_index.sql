-- +goose Up
-- As on PostgreSQL (the migration of the same number): the unique index over
-- live runners' names leads with name, so that it serves lookups by name
-- only and never a lookup by id.
CREATE UNIQUE INDEX runners_name_org ON runners (name, org_id) WHERE deleted_at = 0;
DROP INDEX runners_org_name;

-- +goose Down
CREATE UNIQUE INDEX runners_org_name ON runners (org_id, name) WHERE deleted_at = 0;
DROP INDEX runners_name_org;
