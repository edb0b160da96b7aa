-- +goose Up
-- runner_release_chunks hold the bytes of the release archives in pieces of
-- at most releases.ChunkSize (256 KiB), by the offset of their first byte, so
-- that a download reads one piece at a time instead of the whole archive
-- (a 30 MB archive times the runners downloading at once was the control
-- plane's memory). The archive's row keeps its SHA-256: a download reads
-- each piece only while the archive it started on is still the one
-- published, so a publish in between cuts it short and never mixes bytes.
CREATE TABLE runner_release_chunks (
    channel TEXT NOT NULL,
    file    TEXT NOT NULL,
    off     BIGINT NOT NULL,
    data    BYTEA NOT NULL,
    PRIMARY KEY (channel, file, off)
);
-- Archives are gzip: PostgreSQL's own compression would only cost time.
ALTER TABLE runner_release_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
-- The archives published before move to chunks of 262144 bytes.
INSERT INTO runner_release_chunks (channel, file, off, data)
SELECT a.channel, a.file, n.i::BIGINT * 262144, substring(a.data FROM n.i * 262144 + 1 FOR 262144)
FROM runner_release_archives a
CROSS JOIN LATERAL generate_series(0, (length(a.data) - 1) / 262144) AS n(i)
WHERE length(a.data) > 0;
ALTER TABLE runner_release_archives DROP COLUMN data;

-- +goose Down
ALTER TABLE runner_release_archives ADD COLUMN data BYTEA NOT NULL DEFAULT ''::BYTEA;
UPDATE runner_release_archives a SET data = COALESCE((
    SELECT string_agg(c.data, ''::BYTEA ORDER BY c.off) FROM runner_release_chunks c
    WHERE c.channel = a.channel AND c.file = a.file), ''::BYTEA);
DROP TABLE runner_release_chunks;
