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
    data    BLOB NOT NULL,
    PRIMARY KEY (channel, file, off)
);
-- The archives published before move to chunks of 262144 bytes.
INSERT INTO runner_release_chunks (channel, file, off, data)
WITH RECURSIVE n(i) AS (
    SELECT 0
    UNION ALL
    SELECT i + 1 FROM n WHERE (i + 1) * 262144 < (SELECT COALESCE(MAX(length(data)), 0) FROM runner_release_archives)
)
SELECT a.channel, a.file, n.i * 262144, substr(a.data, n.i * 262144 + 1, 262144)
FROM runner_release_archives a JOIN n ON n.i * 262144 < length(a.data);
ALTER TABLE runner_release_archives DROP COLUMN data;

-- +goose Down
ALTER TABLE runner_release_archives ADD COLUMN data BLOB NOT NULL DEFAULT x'';
UPDATE runner_release_archives SET data = COALESCE((
    SELECT CAST(group_concat(c.data, x'' ORDER BY c.off) AS BLOB) FROM runner_release_chunks c
    WHERE c.channel = runner_release_archives.channel AND c.file = runner_release_archives.file), x'');
DROP TABLE runner_release_chunks;
