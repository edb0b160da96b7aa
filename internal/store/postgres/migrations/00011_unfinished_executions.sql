-- +goose NO TRANSACTION
-- +goose Up
-- A runner's desired state lists the unfinished task executions of its
-- environments on every push; without this index that read visits every
-- execution those environments ever had. The store's query repeats the
-- predicate literally so that the planner can use the index. Built
-- CONCURRENTLY (outside a transaction), so that an upgrade does not stop
-- writes to task_executions while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS task_executions_unfinished ON task_executions (environment_id)
    WHERE phase IN ('TASK_EXECUTION_PHASE_PENDING', 'TASK_EXECUTION_PHASE_RUNNING');

-- +goose Down
DROP INDEX CONCURRENTLY IF EXISTS task_executions_unfinished;
