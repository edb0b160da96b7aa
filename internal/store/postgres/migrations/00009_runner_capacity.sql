-- +goose Up
-- runner_capacity is what placement asks of each runner, so that one
-- indexed query finds the runner a pod goes to instead of reading and
-- decoding every runner of the organization. phase, max_pods, draining (the
-- report's draining, or a desired phase other than ACTIVE), agent_types and
-- labels are copies the store writes with the runner; active_pods counts
-- the runner's active pods (running, or pending with the runner), kept by
-- the trigger below on every write to pods, so that capacity is counted in
-- one place whichever code or replica writes a pod.
--
-- It is a table of its own so that placements lock these rows and renewals
-- lock the runners' rows: a renewal batch updates thousands of runner rows
-- in one transaction, and a placement that waited on one of them while
-- holding another would deadlock with it.
CREATE TABLE runner_capacity (
    runner_id   TEXT PRIMARY KEY REFERENCES runners (id) ON DELETE CASCADE,
    org_id      TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    phase       TEXT NOT NULL,
    max_pods    INTEGER NOT NULL DEFAULT 0,
    draining    BOOLEAN NOT NULL DEFAULT FALSE,
    agent_types JSONB NOT NULL DEFAULT '[]',
    labels      JSONB NOT NULL DEFAULT '[]',
    active_pods INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runner_capacity (runner_id, org_id, seq, phase, max_pods, draining, agent_types, labels, active_pods)
SELECT r.id, r.org_id, r.seq, r.phase,
    COALESCE((r.report::jsonb ->> 'maxPods')::INTEGER, 0),
    COALESCE((r.report::jsonb ->> 'draining')::BOOLEAN, FALSE)
        OR COALESCE(r.spec::jsonb ->> 'desiredPhase', '') <> 'RUNNER_PHASE_ACTIVE',
    COALESCE(r.report::jsonb -> 'agentTypes', '[]'),
    COALESCE(r.report::jsonb -> 'labels', '[]'),
    (SELECT COUNT(*) FROM pods p WHERE p.runner_id = r.id AND p.org_id = r.org_id
        AND (p.status = 'running' OR (p.status = 'pending' AND p.runner_id <> '')))
FROM runners r;
-- The placement query walks this index in its order (fewest pods, then
-- lowest seq) and stops at the first runner that fits; the query repeats
-- the predicate literally so that the planner can use it.
CREATE INDEX runner_capacity_placement ON runner_capacity (org_id, active_pods, seq)
    WHERE phase IN ('RUNNER_PHASE_ACTIVE', 'RUNNER_PHASE_DEGRADED') AND NOT draining;
CREATE INDEX runner_capacity_busy ON runner_capacity (org_id) WHERE active_pods > 0;

-- +goose StatementBegin
CREATE FUNCTION pods_count_active() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was TEXT;
    is_on TEXT;
BEGIN
    IF TG_OP <> 'INSERT' AND (OLD.status = 'running' OR (OLD.status = 'pending' AND OLD.runner_id <> '')) THEN
        was := OLD.runner_id;
    END IF;
    IF TG_OP <> 'DELETE' AND (NEW.status = 'running' OR (NEW.status = 'pending' AND NEW.runner_id <> '')) THEN
        is_on := NEW.runner_id;
    END IF;
    IF was IS DISTINCT FROM is_on THEN
        IF was IS NOT NULL THEN
            UPDATE runner_capacity SET active_pods = active_pods - 1 WHERE runner_id = was AND org_id = OLD.org_id;
        END IF;
        IF is_on IS NOT NULL THEN
            UPDATE runner_capacity SET active_pods = active_pods + 1 WHERE runner_id = is_on AND org_id = NEW.org_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER pods_count_active AFTER INSERT OR DELETE OR UPDATE OF status, runner_id ON pods
    FOR EACH ROW EXECUTE FUNCTION pods_count_active();

-- +goose Down
DROP TRIGGER pods_count_active ON pods;
DROP FUNCTION pods_count_active();
DROP TABLE runner_capacity;
