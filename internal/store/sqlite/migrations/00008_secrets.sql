-- +goose Up
-- secrets: only the encrypted value is stored (key_id names the control-plane
-- key, nonce and ciphertext are AES-256-GCM's), never a plaintext. A name is
-- unique in its scope: scope_id is the organization's ID for organization
-- secrets, else the user's or service account's. file_path is '' unless the
-- secret is mounted as a file.
CREATE TABLE secrets (
    seq                  INTEGER PRIMARY KEY AUTOINCREMENT,
    id                   TEXT NOT NULL UNIQUE,
    org_id               TEXT NOT NULL REFERENCES organizations (id),
    name                 TEXT NOT NULL,
    scope_kind           TEXT NOT NULL,
    scope_id             TEXT NOT NULL,
    environment_variable BOOLEAN NOT NULL DEFAULT FALSE,
    file_path            TEXT NOT NULL DEFAULT '',
    creator_id           TEXT NOT NULL,
    creator_principal    TEXT NOT NULL,
    key_id               TEXT NOT NULL,
    nonce                BLOB NOT NULL,
    ciphertext           BLOB NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    UNIQUE (org_id, scope_kind, scope_id, name)
);
CREATE INDEX secrets_org_seq ON secrets (org_id, seq);

-- +goose Down
DROP TABLE secrets;
