-- +goose Up
-- lost_at is when the control plane gave up on an INACTIVE runner's work:
-- it stayed unreachable past --lost-after, and its pods, services and task
-- executions were failed. It counts for the outage it was set in only: a
-- runner that comes back moves last_seen past it, so its next outage is
-- judged afresh without a write to clear it.
ALTER TABLE runners ADD COLUMN lost_at BIGINT NOT NULL DEFAULT 0;
-- The lost-after sweep looks only at runners still waiting for that
-- judgement; long-dead runners drop out of the index.
CREATE INDEX runners_unreachable ON runners (last_seen)
	WHERE phase = 'RUNNER_PHASE_INACTIVE' AND lost_at <= last_seen AND deleted_at = 0;

-- +goose Down
DROP INDEX runners_unreachable;
ALTER TABLE runners DROP COLUMN lost_at;
