-- +goose Up
-- runyard_claim_pods is ClaimRunnerPods (sqlstore/epochs.go) in one round
-- trip instead of five (BEGIN, the runner's row locked, the pods bound,
-- their epochs read, COMMIT). Every pod delivered is claimed once, and the
-- round trips cost the control plane and PostgreSQL more than the claim's
-- own work (bench/pods). Called outside a transaction, the statement
-- commits as it ends.
--
-- A claim and a stream's acceptance (AcceptRunnerStream, which takes the
-- same lock before it moves the runner's epoch) order one before the
-- other by the runner's stream lock, an advisory lock (lock_class,
-- hashtext(runner id)), no longer by the runner's row: the row is also
-- what every renewal batch locks, and claims and renewals waited for each
-- other (bench/pods: claims 2.4 ms a call, renewal batches 0.35 s). Each
-- statement in the function takes its snapshot after the one before it,
-- so the epoch read after the lock is the one committed last.
--
-- It answers nothing for a runner that does not exist; otherwise first the
-- runner's current epoch (pod_key NULL) and, when that is claim_epoch, one
-- row per active pod of the runner with the epoch it is bound to.
-- +goose StatementBegin
CREATE FUNCTION runyard_claim_pods(lock_class INTEGER, org TEXT, runner TEXT, claim_epoch BIGINT)
RETURNS TABLE (pod_key TEXT, pod_epoch BIGINT)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    current_epoch BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(lock_class, hashtext(runner));
    SELECT r.epoch INTO current_epoch FROM runners r WHERE r.org_id = org AND r.id = runner;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT NULL::TEXT, current_epoch;
    IF current_epoch <> claim_epoch THEN
        RETURN;
    END IF;
    UPDATE pods p SET started_epoch = claim_epoch
        WHERE p.org_id = org AND p.runner_id = runner AND p.started_epoch = 0 AND p.status IN ('pending', 'running');
    RETURN QUERY SELECT p.key, p.started_epoch FROM pods p
        WHERE p.org_id = org AND p.runner_id = runner AND p.status IN ('pending', 'running');
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION runyard_claim_pods(INTEGER, TEXT, TEXT, BIGINT);
