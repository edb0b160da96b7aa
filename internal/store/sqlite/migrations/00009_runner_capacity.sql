-- +goose Up
-- runner_capacity is what placement asks of each runner (see the
-- PostgreSQL migration of the same number, whose placement query uses it):
-- phase, max_pods, draining (the report's draining, or a desired phase
-- other than ACTIVE), agent_types and labels (JSON arrays) are copies the
-- store writes with the runner; active_pods counts the runner's active pods
-- (running, or pending with the runner), kept by the triggers below on
-- every write to pods.
CREATE TABLE runner_capacity (
    runner_id   TEXT PRIMARY KEY REFERENCES runners (id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    phase       TEXT NOT NULL,
    max_pods    INTEGER NOT NULL DEFAULT 0,
    draining    BOOLEAN NOT NULL DEFAULT FALSE,
    agent_types TEXT NOT NULL DEFAULT '[]',
    labels      TEXT NOT NULL DEFAULT '[]',
    active_pods INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runner_capacity (runner_id, org_id, seq, phase, max_pods, draining, agent_types, labels, active_pods)
SELECT r.id, r.org_id, r.seq, r.phase,
    COALESCE(json_extract(r.report, '$.maxPods'), 0),
    COALESCE(json_extract(r.report, '$.draining'), 0)
        OR COALESCE(json_extract(r.spec, '$.desiredPhase'), '') <> 'RUNNER_PHASE_ACTIVE',
    COALESCE(json_extract(r.report, '$.agentTypes'), '[]'),
    COALESCE(json_extract(r.report, '$.labels'), '[]'),
    (SELECT COUNT(*) FROM pods p WHERE p.runner_id = r.id AND p.org_id = r.org_id
        AND (p.status = 'running' OR (p.status = 'pending' AND p.runner_id <> '')))
FROM runners r;
CREATE INDEX runner_capacity_busy ON runner_capacity (org_id) WHERE active_pods > 0;

-- +goose StatementBegin
CREATE TRIGGER pods_count_active_insert AFTER INSERT ON pods
WHEN NEW.status = 'running' OR (NEW.status = 'pending' AND NEW.runner_id <> '')
BEGIN
    UPDATE runner_capacity SET active_pods = active_pods + 1 WHERE runner_id = NEW.runner_id AND org_id = NEW.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER pods_count_active_delete AFTER DELETE ON pods
WHEN OLD.status = 'running' OR (OLD.status = 'pending' AND OLD.runner_id <> '')
BEGIN
    UPDATE runner_capacity SET active_pods = active_pods - 1 WHERE runner_id = OLD.runner_id AND org_id = OLD.org_id;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER pods_count_active_update AFTER UPDATE OF status, runner_id ON pods
WHEN (CASE WHEN OLD.status = 'running' OR (OLD.status = 'pending' AND OLD.runner_id <> '') THEN OLD.runner_id END)
    IS NOT (CASE WHEN NEW.status = 'running' OR (NEW.status = 'pending' AND NEW.runner_id <> '') THEN NEW.runner_id END)
BEGIN
    UPDATE runner_capacity SET active_pods = active_pods - 1
        WHERE runner_id = OLD.runner_id AND org_id = OLD.org_id
        AND (OLD.status = 'running' OR (OLD.status = 'pending' AND OLD.runner_id <> ''));
    UPDATE runner_capacity SET active_pods = active_pods + 1
        WHERE runner_id = NEW.runner_id AND org_id = NEW.org_id
        AND (NEW.status = 'running' OR (NEW.status = 'pending' AND NEW.runner_id <> ''));
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER pods_count_active_update;
DROP TRIGGER pods_count_active_delete;
DROP TRIGGER pods_count_active_insert;
DROP TABLE runner_capacity;
