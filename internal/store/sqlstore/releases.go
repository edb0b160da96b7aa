package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/releases"
)

// PublishRelease replaces a channel's release and its archives in one
// transaction: a runner reading the channel sees the old release or the new
// one, never a mix. Each archive's bytes go in chunks of releases.ChunkSize
// (runner_release_chunks), which a download reads one at a time.
func (db *DB) PublishRelease(ctx context.Context, r *releases.Release, data map[string][]byte) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_release_archives WHERE channel = ?`), string(r.Channel)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_release_chunks WHERE channel = ?`), string(r.Channel)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_releases WHERE channel = ?`), string(r.Channel)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_releases (channel, version, commit_sha, build_date, sums, signature, published_at, published_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), string(r.Channel), r.Version, r.Commit, r.BuildDate, r.Sums, r.Signature, micros(r.PublishedAt), r.PublishedBy); err != nil {
			return err
		}
		for _, a := range r.Archives {
			b := data[a.File]
			if int64(len(b)) != a.Size {
				return fmt.Errorf("archive %s: %d bytes, but the release says %d", a.File, len(b), a.Size)
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_release_archives (channel, file, os, arch, sha256, size)
				VALUES (?, ?, ?, ?, ?, ?)`), string(r.Channel), a.File, a.OS, a.Arch, a.SHA256, a.Size); err != nil {
				return err
			}
			for off := 0; off < len(b); off += releases.ChunkSize {
				chunk := b[off:min(off+releases.ChunkSize, len(b))]
				if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_release_chunks (channel, file, off, data) VALUES (?, ?, ?, ?)`),
					string(r.Channel), a.File, int64(off), chunk); err != nil {
					return fmt.Errorf("archive %s at byte %d: %w", a.File, off, err)
				}
			}
		}
		return nil
	})
	return db.translate(err, "release")
}

// FindReleases returns every channel's release, in channel order.
func (db *DB) FindReleases(ctx context.Context) ([]*releases.Release, error) {
	var out []*releases.Release
	for _, ch := range releases.Channels {
		r, err := db.FindRelease(ctx, ch)
		if err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				continue
			}
			return nil, err
		}
		out = append(out, r)
	}
	if out == nil {
		out = []*releases.Release{}
	}
	return out, nil
}

// FindRelease returns a channel's release with its archives (not their bytes).
func (db *DB) FindRelease(ctx context.Context, ch releases.Channel) (*releases.Release, error) {
	r := &releases.Release{Channel: ch}
	var at int64
	err := db.read.QueryRowContext(ctx, db.q(`SELECT version, commit_sha, build_date, sums, signature, published_at, published_by
		FROM runner_releases WHERE channel = ?`), string(ch)).
		Scan(&r.Version, &r.Commit, &r.BuildDate, &r.Sums, &r.Signature, &at, &r.PublishedBy)
	if err != nil {
		return nil, db.translate(err, "release of channel "+string(ch))
	}
	r.PublishedAt = fromMicros(at)
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT os, arch, file, sha256, size FROM runner_release_archives WHERE channel = ?`), string(ch))
	if err != nil {
		return nil, db.translate(err, "release")
	}
	defer rows.Close()
	for rows.Next() {
		var a releases.Archive
		if err := rows.Scan(&a.OS, &a.Arch, &a.File, &a.SHA256, &a.Size); err != nil {
			return nil, db.translate(err, "release")
		}
		r.Archives = append(r.Archives, a)
	}
	if err := rows.Err(); err != nil {
		return nil, db.translate(err, "release")
	}
	sort.Slice(r.Archives, func(i, j int) bool { return r.Archives[i].File < r.Archives[j].File })
	return r, nil
}

// ReleaseArchiveChunk returns the chunk of file of a channel's release
// that holds byte off, provided the archive's SHA-256 is still sum: one
// statement reads the archive's row and the chunk, so a publish since (which
// replaced both in its transaction) gives not_found, never the new bytes.
// The bytes go in buf when it has room (a download reuses one buffer; the
// driver's own copy is garbage at once).
func (db *DB) ReleaseArchiveChunk(ctx context.Context, ch releases.Channel, file, sum string, off int64, buf []byte) (int64, []byte, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT c.off, c.data FROM runner_release_chunks c
		JOIN runner_release_archives a ON a.channel = c.channel AND a.file = c.file
		WHERE c.channel = ? AND c.file = ? AND a.sha256 = ? AND c.off <= ? AND a.size > ?
		ORDER BY c.off DESC LIMIT 1`), string(ch), file, sum, off, off)
	if err != nil {
		return 0, nil, db.translate(err, "release archive "+file)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, nil, db.translate(err, "release archive "+file)
		}
		return 0, nil, db.translate(sql.ErrNoRows, "release archive "+file)
	}
	var start int64
	var raw sql.RawBytes
	if err := rows.Scan(&start, &raw); err != nil {
		return 0, nil, db.translate(err, "release archive "+file)
	}
	b := append(buf[:0], raw...)
	return start, b, db.translate(rows.Close(), "release archive "+file)
}
