-- +goose NO TRANSACTION
-- +goose Up
-- A deleted runner stays as a tombstone (deleted_at > 0, phase
-- RUNNER_PHASE_DELETED) until it is purged, so that a client can read that
-- it was deleted. Its name must be free at once, so uniqueness of
-- (org_id, name) holds among the runners that are not deleted only: a
-- partial unique index instead of the table's UNIQUE constraint.
--
-- SQLite cannot drop a table constraint, so the table is rebuilt as
-- https://www.sqlite.org/lang_altertable.html#otheralter describes. That
-- needs foreign keys off (dropping runners with them on would cascade to
-- runner_capacity and trip exchange_tokens), which is only possible outside
-- a transaction: hence NO TRANSACTION, and a transaction of our own around
-- the rebuild.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE runners_new (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    runner_manager_id TEXT NOT NULL DEFAULT '',
    spec              TEXT NOT NULL,
    metrics_password  TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    phase             TEXT NOT NULL DEFAULT 'RUNNER_PHASE_CREATED',
    last_seen         INTEGER NOT NULL DEFAULT 0,
    report            TEXT NOT NULL DEFAULT '{}',
    -- deleted_at is when the runner was deleted (microseconds); 0 while it
    -- exists.
    deleted_at        INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runners_new (seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
    creator_id, creator_principal, created_at, updated_at, phase, last_seen, report)
SELECT seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
    creator_id, creator_principal, created_at, updated_at, phase, last_seen, report
FROM runners;
-- AUTOINCREMENT never reuses a numeric id (the REST API's runner id), even
-- one of a runner deleted before this migration: carry the high-water mark
-- over, which the copy alone would lower to the highest remaining seq.
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(o.seq), 0) FROM sqlite_sequence o WHERE o.name = 'runners'))
    WHERE name = 'runners_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'runners_new', seq FROM sqlite_sequence WHERE name = 'runners'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runners_new');
DROP TABLE runners;
ALTER TABLE runners_new RENAME TO runners;
CREATE INDEX runners_org_seq ON runners (org_id, seq);
CREATE INDEX runners_liveness ON runners (phase, last_seen);
CREATE UNIQUE INDEX runners_org_name ON runners (org_id, name) WHERE deleted_at = 0;
-- The purge of expired tombstones reads this index.
CREATE INDEX runners_deleted ON runners (deleted_at) WHERE deleted_at > 0;
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Tombstones would break the table constraint; they go first. They have
-- no exchange tokens (deleted with them), but one that slipped through
-- would block the DELETE.
DELETE FROM exchange_tokens WHERE runner_id IN (SELECT id FROM runners WHERE deleted_at > 0);
DELETE FROM runners WHERE deleted_at > 0;
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE runners_old (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    org_id            TEXT NOT NULL REFERENCES organizations (id),
    name              TEXT NOT NULL,
    kind              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    runner_manager_id TEXT NOT NULL DEFAULT '',
    spec              TEXT NOT NULL,
    metrics_password  TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL,
    creator_id        TEXT NOT NULL,
    creator_principal TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    phase             TEXT NOT NULL DEFAULT 'RUNNER_PHASE_CREATED',
    last_seen         INTEGER NOT NULL DEFAULT 0,
    report            TEXT NOT NULL DEFAULT '{}',
    UNIQUE (org_id, name)
);
INSERT INTO runners_old (seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
    creator_id, creator_principal, created_at, updated_at, phase, last_seen, report)
SELECT seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
    creator_id, creator_principal, created_at, updated_at, phase, last_seen, report
FROM runners;
UPDATE sqlite_sequence SET seq = MAX(seq, (SELECT COALESCE(MAX(o.seq), 0) FROM sqlite_sequence o WHERE o.name = 'runners'))
    WHERE name = 'runners_old';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'runners_old', seq FROM sqlite_sequence WHERE name = 'runners'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'runners_old');
DROP TABLE runners;
ALTER TABLE runners_old RENAME TO runners;
CREATE INDEX runners_org_seq ON runners (org_id, seq);
CREATE INDEX runners_liveness ON runners (phase, last_seen);
COMMIT;
PRAGMA foreign_keys = ON;
