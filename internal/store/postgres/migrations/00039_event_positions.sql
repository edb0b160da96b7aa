-- +goose Up
-- Events get their position in the feed (pos, the cursor watchers see)
-- after they commit, in the order they became visible, so that a reader
-- never sees a position missing below one it read: the feed no longer
-- waits out ids drawn by transactions still running (which, with many
-- concurrent writers, was nearly every read; bench/events: p50 115 ms at
-- 100 streams).
--
-- runyard_read_events sequences, then reads: under an advisory lock (one
-- sequencer at a time across replicas), in a statement whose snapshot is
-- taken after the lock is granted, it numbers every committed event without
-- a position from events_sequence.last on, by id (a resource's later change
-- drew its id after the earlier one committed: its row lock waited), and
-- then reads the positions after the cursor. Sequencers commit one after
-- another, and a position is drawn by a later sequencer than every lower
-- one, so whoever sees a position sees every lower one that will ever
-- exist. Positions of a sequencer that rolled back are never used; a gap is
-- final.
--
-- The NOTIFY that wakes other replicas moves from the trigger to the
-- numbering: PostgreSQL serializes the commits of every transaction that
-- notified (a cluster-wide lock held through the commit), and with a NOTIFY
-- in every write, concurrent writes queued behind a preempted committer
-- (bench/events: most of the writers' time was that wait). A replica's own
-- commits wake its hub in the process, which numbers them and notifies
-- once for all it numbered.
--
-- Existing events keep their id as their position, so cursors given before
-- stay valid, and positions go on above the highest id drawn.
ALTER TABLE events ADD COLUMN pos BIGINT;
UPDATE events SET pos = id;
CREATE UNIQUE INDEX events_pos ON events (pos);
CREATE INDEX events_unsequenced ON events (id) WHERE pos IS NULL;
CREATE TABLE events_sequence (last BIGINT NOT NULL);
INSERT INTO events_sequence (last)
SELECT GREATEST(COALESCE((SELECT MAX(id) FROM events), 0),
    (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM events_id_seq));

-- +goose StatementBegin
CREATE FUNCTION runyard_read_events(lock_class INTEGER, after BIGINT, lim INTEGER)
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

-- runyard_event as in 00020, without the NOTIFY.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION runyard_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    env text := '';
    own text := '';
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_ARGV[2] = 'self' THEN
        env := r.id;
    ELSIF TG_ARGV[2] = 'column' THEN
        env := r.environment_id;
    ELSIF TG_ARGV[2] = 'owner' THEN
        IF r.scope_kind IN ('user', 'service_account') THEN own := r.scope_id; END IF;
    END IF;
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, owner, created_at)
    VALUES (r.org_id, TG_ARGV[0], r.id, TG_ARGV[1], env, own,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION runyard_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    env text := '';
    own text := '';
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_ARGV[2] = 'self' THEN
        env := r.id;
    ELSIF TG_ARGV[2] = 'column' THEN
        env := r.environment_id;
    ELSIF TG_ARGV[2] = 'owner' THEN
        IF r.scope_kind IN ('user', 'service_account') THEN own := r.scope_id; END IF;
    END IF;
    INSERT INTO events (org_id, resource_type, resource_id, operation, environment_id, owner, created_at)
    VALUES (r.org_id, TG_ARGV[0], r.id, TG_ARGV[1], env, own,
        (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    PERFORM pg_notify('runyard_events', '');
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
DROP FUNCTION runyard_read_events(INTEGER, BIGINT, INTEGER);
DROP TABLE events_sequence;
DROP INDEX events_unsequenced;
DROP INDEX events_pos;
ALTER TABLE events DROP COLUMN pos;
