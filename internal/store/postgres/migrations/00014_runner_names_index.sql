-- +goose Up
-- The unique index over live runners' names (00010) led with org_id, and
-- matched the "deleted_at = 0" every runner lookup carries: on a freshly
-- filled table PostgreSQL chose it to find a runner by org_id and id,
-- walking every runner of the organization (bench/pods: 10,000 runners took
-- twice as long to connect). Leading with name, it serves only lookups by
-- name, and lookups by id take the id index.
CREATE UNIQUE INDEX runners_name_org ON runners (name, org_id) WHERE deleted_at = 0;
DROP INDEX runners_org_name;

-- +goose Down
CREATE UNIQUE INDEX runners_org_name ON runners (org_id, name) WHERE deleted_at = 0;
DROP INDEX runners_name_org;
