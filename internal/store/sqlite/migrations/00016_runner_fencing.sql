-- +goose Up
-- One runner identity, one daemon (issue 10, item 4).
-- An exchange token remembers the public key of the daemon that redeemed it
-- and the access token it got, so that the same daemon may retry an exchange
-- whose answer it never received (the control plane crashed after the
-- commit) and nobody else may.
ALTER TABLE exchange_tokens ADD COLUMN redeemed_key TEXT NOT NULL DEFAULT '';
ALTER TABLE exchange_tokens ADD COLUMN access_token_id TEXT NOT NULL DEFAULT '';
-- epoch is the fencing token of the runner's streams: every accepted stream
-- increments it, and reports from a stream of an older epoch are refused.
ALTER TABLE runners ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
-- started_epoch is the epoch of the stream that first reported the pod
-- running (0: none yet), so that no other daemon is asked to start it again.
ALTER TABLE pods ADD COLUMN started_epoch BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE pods DROP COLUMN started_epoch;
ALTER TABLE runners DROP COLUMN epoch;
ALTER TABLE exchange_tokens DROP COLUMN access_token_id;
ALTER TABLE exchange_tokens DROP COLUMN redeemed_key;
