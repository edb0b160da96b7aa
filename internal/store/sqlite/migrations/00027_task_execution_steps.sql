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
    pos             INTEGER NOT NULL,
    status_version  BIGINT NOT NULL DEFAULT 0,
    phase           TEXT,
    failure_message TEXT NOT NULL DEFAULT '',
    output          TEXT,
    PRIMARY KEY (execution_id, step_id)
);

-- Every step of every plan, in plan order.
INSERT INTO task_execution_steps (execution_id, step_id, pos)
SELECT x.id, json_extract(s.value, '$.id'), ROW_NUMBER() OVER (PARTITION BY x.id ORDER BY g.key, s.key)
FROM task_executions x, json_each(x.spec, '$.plan') g, json_each(g.value, '$.steps') s;

-- A status step the plan lacks (none should exist) is kept after the plan's.
INSERT INTO task_execution_steps (execution_id, step_id, pos)
SELECT x.id, json_extract(s.value, '$.id'), 1000000000 + s.key
FROM task_executions x, json_each(x.status, '$.steps') s
WHERE NOT EXISTS (SELECT 1 FROM task_execution_steps t WHERE t.execution_id = x.id AND t.step_id = json_extract(s.value, '$.id'));

-- The statuses of the steps that started.
UPDATE task_execution_steps SET phase = r.phase, failure_message = r.msg, output = r.output, status_version = r.ver
FROM (SELECT x.id AS xid, json_extract(s.value, '$.id') AS sid, COALESCE(json_extract(s.value, '$.phase'), '') AS phase,
             COALESCE(json_extract(s.value, '$.failureMessage'), '') AS msg,
             CASE WHEN json_type(s.value, '$.output') = 'object' THEN json_extract(s.value, '$.output') END AS output,
             COALESCE(json_extract(x.status, '$.statusVersion'), 0) AS ver
      FROM task_executions x, json_each(x.status, '$.steps') s) AS r
WHERE task_execution_steps.execution_id = r.xid AND task_execution_steps.step_id = r.sid;

-- +goose Down
-- The steps go back into the status documents.
UPDATE task_executions SET status = json_set(status, '$.steps', json((
    SELECT json_group_array(json_object('id', t.step_id, 'phase', t.phase, 'failureMessage', t.failure_message,
                                        'output', json(COALESCE(t.output, '{}'))) ORDER BY t.pos)
    FROM task_execution_steps t WHERE t.execution_id = task_executions.id AND t.phase IS NOT NULL)))
WHERE EXISTS (SELECT 1 FROM task_execution_steps t WHERE t.execution_id = task_executions.id AND t.phase IS NOT NULL);
DROP TABLE task_execution_steps;
