-- +goose Up
-- container_registry_basic_auth_host is '' unless the secret is mounted as
-- the basic-auth credentials (user:password) of that container registry.
ALTER TABLE secrets ADD COLUMN container_registry_basic_auth_host TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE secrets DROP COLUMN container_registry_basic_auth_host;
