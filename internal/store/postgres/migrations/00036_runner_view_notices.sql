-- +goose Up
-- Every replica keeps the runners the API reads in memory (sqlstore's
-- runner view) and must forget one as soon as any replica changes it. The
-- trigger notifies runyard_runners with "org|id|m" when a runner is created
-- or deleted (a page of the list changes) and "org|id|u" for any other
-- change; PostgreSQL delivers a notice at the commit of its transaction, and
-- only then, to every replica that LISTENs (postgres.ListenRunners). A
-- renewal (only last_seen changes) is left to RenewRunners, which names a
-- whole batch in a few notices ("r|org:id,org:id,..."): a notice per row
-- for the renewals of 10,000 runners cost more than pod placement.
-- +goose StatementBegin
CREATE FUNCTION runyard_runner_notice() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    kind text := 'u';
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.last_seen IS DISTINCT FROM NEW.last_seen
        AND (to_jsonb(OLD) - 'last_seen') = (to_jsonb(NEW) - 'last_seen') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    IF TG_OP = 'INSERT' OR TG_OP = 'DELETE'
        OR (TG_OP = 'UPDATE' AND OLD.deleted_at = 0 AND NEW.deleted_at > 0) THEN
        kind := 'm';
    END IF;
    PERFORM pg_notify('runyard_runners', r.org_id || '|' || r.id || '|' || kind);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER runners_view_notice AFTER INSERT OR UPDATE OR DELETE ON runners
    FOR EACH ROW EXECUTE FUNCTION runyard_runner_notice();

-- +goose Down
DROP TRIGGER runners_view_notice ON runners;
DROP FUNCTION runyard_runner_notice();
