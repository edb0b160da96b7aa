-- +goose Up
-- A task execution's steps get a row each (issue 17): a runner's report
-- updates the rows of the steps it names and the execution's small status
-- document, instead of reading and writing a document of every step, which
-- made an execution cost O(steps²). One row per step of the plan, created
-- with the execution; phase is NULL until the step starts. status_version
-- is the version of the report that last wrote the row, so reports of
-- different steps never undo each other.
--
-- Existing executions keep their status documents as they are (rewriting
-- them would record an event for each); the store ignores the steps in
-- them from now on and drops them at the next write.
CREATE TABLE task_execution_steps (
    execution_id    TEXT NOT NULL REFERENCES task_executions (id) ON DELETE CASCADE,
    step_id         TEXT NOT NULL,
    pos             BIGINT NOT NULL,
    status_version  BIGINT NOT NULL DEFAULT 0,
    phase           TEXT,
    failure_message TEXT NOT NULL DEFAULT '',
    output          TEXT,
    PRIMARY KEY (execution_id, step_id)
);

-- Every step of every plan, in plan order.
INSERT INTO task_execution_steps (execution_id, step_id, pos)
SELECT x.id, s.value->>'id', ROW_NUMBER() OVER (PARTITION BY x.id ORDER BY g.ord, s.ord)
FROM task_executions x
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x.spec::jsonb->'plan') = 'array' THEN x.spec::jsonb->'plan' ELSE '[]'::jsonb END)
    WITH ORDINALITY AS g(value, ord)
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(g.value->'steps') = 'array' THEN g.value->'steps' ELSE '[]'::jsonb END)
    WITH ORDINALITY AS s(value, ord);

-- The status steps, as (execution, position, step).
CREATE TEMPORARY TABLE task_execution_steps_reported ON COMMIT DROP AS
SELECT x.id AS xid, s.ord AS ord, s.value AS v,
       LEAST(COALESCE((x.status::jsonb->>'statusVersion')::numeric, 0), 9223372036854775807)::bigint AS ver
FROM task_executions x
CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(x.status::jsonb->'steps') = 'array' THEN x.status::jsonb->'steps' ELSE '[]'::jsonb END)
    WITH ORDINALITY AS s(value, ord);

-- A status step the plan lacks (none should exist) is kept after the plan's.
INSERT INTO task_execution_steps (execution_id, step_id, pos)
SELECT r.xid, r.v->>'id', 1000000000 + r.ord
FROM task_execution_steps_reported r
WHERE NOT EXISTS (SELECT 1 FROM task_execution_steps t WHERE t.execution_id = r.xid AND t.step_id = r.v->>'id');

-- The statuses of the steps that started.
UPDATE task_execution_steps t SET phase = COALESCE(r.v->>'phase', ''), failure_message = COALESCE(r.v->>'failureMessage', ''),
    output = CASE WHEN jsonb_typeof(r.v->'output') = 'object' THEN (r.v->'output')::text END, status_version = r.ver
FROM task_execution_steps_reported r
WHERE t.execution_id = r.xid AND t.step_id = r.v->>'id';

-- +goose Down
-- The steps go back into the status documents.
UPDATE task_executions x SET status = jsonb_set(x.status::jsonb, '{steps}', (
    SELECT jsonb_agg(jsonb_build_object('id', t.step_id, 'phase', t.phase, 'failureMessage', t.failure_message,
                                        'output', COALESCE(t.output, '{}')::jsonb) ORDER BY t.pos)
    FROM task_execution_steps t WHERE t.execution_id = x.id AND t.phase IS NOT NULL))::text
WHERE EXISTS (SELECT 1 FROM task_execution_steps t WHERE t.execution_id = x.id AND t.phase IS NOT NULL);
DROP TABLE task_execution_steps;
