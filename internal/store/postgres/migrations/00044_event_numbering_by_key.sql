-- +goose Up
-- runyard_read_events numbers the events without a position one by one,
-- each found by its key, instead of in one UPDATE joined to the pending
-- rows. PL/pgSQL plans that UPDATE once per connection and keeps the plan:
-- planned while the table was young (PostgreSQL then guesses a few hundred
-- rows), it was a hash join over a sequential scan of the whole table, and
-- every later call scanned every event kept (bench/pods: 1,300 buffers a
-- call at 50,000 events, the feed's reads most of PostgreSQL's CPU). A
-- lookup by key keeps its plan whatever the table grows to, and the
-- function forbids sequential scans for the same reason (its other
-- statements have indexes: events_unsequenced, events_pos). That makes the
-- one scan it cannot avoid, of the one row of events_sequence, cost more
-- than PostgreSQL's threshold for compiling a plan with LLVM, which then
-- took 58 ms a call: the function does without JIT, as none of its
-- statements gains from it.
--
-- A pending event pruned meanwhile is skipped, and its position left as a
-- gap: positions only go up (events_sequence.last is the last one drawn).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION runyard_read_events(lock_class INTEGER, after BIGINT, lim INTEGER)
RETURNS TABLE (pos BIGINT, org_id TEXT, resource_type TEXT, resource_id TEXT, operation TEXT,
    environment_id TEXT, owner TEXT, created_at BIGINT)
LANGUAGE plpgsql VOLATILE SET enable_seqscan = off SET jit = off AS $$
#variable_conflict use_column
DECLARE
    first_pos BIGINT;
    next_pos BIGINT;
    pending BIGINT;
BEGIN
    IF EXISTS (SELECT 1 FROM events e WHERE e.pos IS NULL) THEN
        PERFORM pg_advisory_xact_lock(lock_class, 0);
        -- Taken after the lock: the last position of the sequencer before.
        SELECT s.last INTO first_pos FROM events_sequence s;
        next_pos := first_pos;
        FOR pending IN SELECT e.id FROM events e WHERE e.pos IS NULL ORDER BY e.id LOOP
            next_pos := next_pos + 1;
            UPDATE events e SET pos = next_pos WHERE e.id = pending;
        END LOOP;
        IF next_pos > first_pos THEN
            UPDATE events_sequence SET last = next_pos;
            PERFORM pg_notify('runyard_events', '');
        END IF;
    END IF;
    RETURN QUERY SELECT e.pos, e.org_id, e.resource_type, e.resource_id, e.operation, e.environment_id, e.owner, e.created_at
        FROM events e WHERE e.pos > after ORDER BY e.pos LIMIT lim;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION runyard_read_events(lock_class INTEGER, after BIGINT, lim INTEGER)
RETURNS TABLE (pos BIGINT, org_id TEXT, resource_type TEXT, resource_id TEXT, operation TEXT,
    environment_id TEXT, owner TEXT, created_at BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    numbered_now BIGINT;
BEGIN
    IF EXISTS (SELECT 1 FROM events e WHERE e.pos IS NULL) THEN
        PERFORM pg_advisory_xact_lock(lock_class, 0);
        WITH pending AS (
            SELECT e.id, s.last + row_number() OVER (ORDER BY e.id) AS p
            FROM events e, events_sequence s WHERE e.pos IS NULL
        ), numbered AS (
            UPDATE events e SET pos = pending.p FROM pending WHERE e.id = pending.id RETURNING e.pos
        )
        UPDATE events_sequence SET last = n.top FROM (SELECT MAX(numbered.pos) AS top FROM numbered) n
        WHERE n.top IS NOT NULL;
        GET DIAGNOSTICS numbered_now = ROW_COUNT;
        IF numbered_now > 0 THEN
            PERFORM pg_notify('runyard_events', '');
        END IF;
    END IF;
    RETURN QUERY SELECT e.pos, e.org_id, e.resource_type, e.resource_id, e.operation, e.environment_id, e.owner, e.created_at
        FROM events e WHERE e.pos > after ORDER BY e.pos LIMIT lim;
END
$$;
-- +goose StatementEnd
