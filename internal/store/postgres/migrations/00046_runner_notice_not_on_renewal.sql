-- +goose Up
-- The runner view's trigger (00036) no longer runs for a renewal at all. It
-- ran for every row a renewal batch updated, only to find, comparing the
-- whole old and new rows as JSON, that last_seen alone had changed: at
-- 10,000 runners (bench/pods) a batch of a few thousand renewals took
-- 0.4 s, and the claims of the pods placed on those runners waited for its
-- row locks. An UPDATE fires the trigger now only when it sets a column
-- other than last_seen; TestRunnerNoticeColumns keeps this list equal to
-- the table's columns but last_seen. UpdateRunner sets every column, so the
-- function's own check for a change of last_seen alone stays.
DROP TRIGGER runners_view_notice ON runners;
CREATE TRIGGER runners_view_notice AFTER INSERT OR DELETE OR UPDATE OF
    seq, id, org_id, name, kind, provider, runner_manager_id, spec, metrics_password, status,
    creator_id, creator_principal, created_at, updated_at, phase, report, deleted_at, epoch, lost_at
    ON runners FOR EACH ROW EXECUTE FUNCTION runyard_runner_notice();

-- +goose Down
DROP TRIGGER runners_view_notice ON runners;
CREATE TRIGGER runners_view_notice AFTER INSERT OR UPDATE OR DELETE ON runners
    FOR EACH ROW EXECUTE FUNCTION runyard_runner_notice();
