-- +goose Up
-- runyard_place_pods places a batch of pods of one organization in one
-- statement (sqlstore/placebatch.go). Called outside a transaction, the
-- statement commits as it ends: the organization's placement lock is held
-- for the server's work alone, once per batch, never across a round trip
-- to a client (one pod per transaction held it over four, and a preempted
-- caller kept every placement of the organization waiting).
--
-- The pods of the batch that ask for the same agent type and labels are
-- placed together, as pods.place would place them one after another:
-- every pod goes to the runner with the fewest pods, then the lowest seq,
-- among the online ones that are not draining, fit and have room, and
-- counts there. That sequence of choices is the first n of the runners'
-- free places ordered by (pods the runner holds before the place is taken,
-- seq), and only the first n fitting runners in that order can hold them:
-- a later runner's first place comes after one place on each runner before
-- it. So one walk of runner_capacity_placement, stopping after n fitting
-- runners, places n pods. The online bound is the latest of the group's
-- pods: the runners the placement sees online now.
--
-- Each statement in the function takes its snapshot after the lock is
-- granted (a VOLATILE function under READ COMMITTED), so it sees every
-- placement committed before and the groups placed before it. A pod for
-- which no runner has room is not stored: its caller places it alone, with
-- the reason it waits. The audit entries (audit, NULL for none) of the pods
-- stored are stored with them.
--
-- batch is a JSON array of objects with the pods' columns, ord (the order
-- the pods came in), live_after (microseconds; a runner's last renewal must
-- be later), want_agent and want_labels (JSON arrays its agent_types and
-- labels must contain) and audit. It answers each stored pod's key and seq
-- and its runner's id and seq.
-- +goose StatementBegin
CREATE FUNCTION runyard_place_pods(lock_class INTEGER, org TEXT, batch JSONB)
RETURNS TABLE (pod_key TEXT, pod_seq BIGINT, chosen_id TEXT, chosen_seq BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    g record;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(org));
    FOR g IN SELECT x.want_agent, x.want_labels, max(x.live_after) AS live_after, count(*) AS n
        FROM jsonb_to_recordset(batch) AS x(ord INTEGER, live_after BIGINT, want_agent JSONB, want_labels JSONB)
        GROUP BY x.want_agent, x.want_labels ORDER BY min(x.ord)
    LOOP
        RETURN QUERY
        WITH cand AS (
            SELECT c.runner_id, c.seq, c.active_pods, c.max_pods
            FROM runner_capacity c JOIN runners r ON r.id = c.runner_id
            WHERE c.org_id = org AND c.phase IN ('RUNNER_PHASE_ACTIVE', 'RUNNER_PHASE_DEGRADED')
            AND NOT c.draining AND c.active_pods < c.max_pods
            AND r.last_seen > g.live_after AND c.agent_types @> g.want_agent AND c.labels @> g.want_labels
            ORDER BY c.active_pods, c.seq LIMIT g.n
        ), places AS (
            SELECT s.runner_id, row_number() OVER (ORDER BY s.level, s.seq) AS k
            FROM (SELECT cand.runner_id, cand.seq,
                    generate_series(cand.active_pods, LEAST(cand.max_pods, cand.active_pods + g.n) - 1) AS level
                FROM cand) s
            ORDER BY s.level, s.seq LIMIT g.n
        ), mine AS (
            SELECT p.*, row_number() OVER (ORDER BY p.ord) AS k
            FROM jsonb_to_recordset(batch) AS p(ord INTEGER, key TEXT, status TEXT, agent_type_id TEXT,
                initial_prompt TEXT, labels TEXT, workdir TEXT, reason TEXT, exit_code BIGINT, created_at BIGINT,
                started_at BIGINT, finished_at BIGINT, env TEXT, spec TEXT, desired_status TEXT,
                want_agent JSONB, want_labels JSONB, audit JSONB)
            WHERE p.want_agent = g.want_agent AND p.want_labels = g.want_labels
        ), stored AS (
            INSERT INTO pods (key, org_id, runner_id, status, agent_type_id, initial_prompt, labels, workdir,
                reason, exit_code, created_at, started_at, finished_at, env, spec, desired_status)
            SELECT m.key, org, pl.runner_id, m.status, m.agent_type_id, m.initial_prompt, m.labels, m.workdir,
                m.reason, m.exit_code, m.created_at, m.started_at, m.finished_at, m.env, m.spec, m.desired_status
            FROM mine m JOIN places pl ON pl.k = m.k ORDER BY m.k
            RETURNING key, seq, runner_id
        ), audited AS (
            INSERT INTO audit_log (org_id, actor_principal, actor_id, key_id, user_id, surface, method,
                object_type, object_id, client_ip, user_agent, outcome, created_at)
            SELECT a.org_id, a.actor_principal, a.actor_id, a.key_id, a.user_id, a.surface, a.method,
                a.object_type, a.object_id, a.client_ip, a.user_agent, a.outcome, a.created_at
            FROM mine m JOIN places pl ON pl.k = m.k,
                jsonb_to_record(m.audit) AS a(org_id TEXT, actor_principal TEXT, actor_id TEXT, key_id TEXT,
                    user_id TEXT, surface TEXT, method TEXT, object_type TEXT, object_id TEXT, client_ip TEXT,
                    user_agent TEXT, outcome TEXT, created_at BIGINT)
            WHERE m.audit IS NOT NULL
        )
        SELECT st.key, st.seq, st.runner_id, cand.seq FROM stored st JOIN cand ON cand.runner_id = st.runner_id;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION runyard_place_pods(INTEGER, TEXT, JSONB);
