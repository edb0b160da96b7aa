-- +goose Up
-- server_keys holds secrets every control-plane replica must share, such as
-- the key that signs manifest download URLs. A key is created on first use.
CREATE TABLE server_keys (
    name       TEXT PRIMARY KEY,
    key        BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE server_keys;
