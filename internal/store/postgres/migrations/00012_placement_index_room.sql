-- +goose Up
-- Full runners leave the placement index: filling an organization, the
-- placement query walked past every full runner of the lowest counts before
-- reaching one with room. The query repeats the predicate literally.
DROP INDEX runner_capacity_placement;
CREATE INDEX runner_capacity_placement ON runner_capacity (org_id, active_pods, seq)
    WHERE phase IN ('RUNNER_PHASE_ACTIVE', 'RUNNER_PHASE_DEGRADED') AND NOT draining AND active_pods < max_pods;

-- +goose Down
DROP INDEX runner_capacity_placement;
CREATE INDEX runner_capacity_placement ON runner_capacity (org_id, active_pods, seq)
    WHERE phase IN ('RUNNER_PHASE_ACTIVE', 'RUNNER_PHASE_DEGRADED') AND NOT draining;
