package sqlstore

import (
	"context"
	"database/sql"
	"sort"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/releases"
)

// PublishRelease replaces a channel's release and its archives in one
// transaction: a runner reading the channel sees the old release or the new
// one, never a mix.
func (db *DB) PublishRelease(ctx context.Context, r *releases.Release, data map[string][]byte) error {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_release_archives WHERE channel = ?`), string(r.Channel)); err != nil {
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
			if b == nil {
				b = []byte{}
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_release_archives (channel, file, os, arch, sha256, size, data)
				VALUES (?, ?, ?, ?, ?, ?, ?)`), string(r.Channel), a.File, a.OS, a.Arch, a.SHA256, a.Size, b); err != nil {
				return err
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

// ReleaseArchive returns the bytes of one archive of a channel's release.
func (db *DB) ReleaseArchive(ctx context.Context, ch releases.Channel, file string) ([]byte, error) {
	var b []byte
	err := db.read.QueryRowContext(ctx, db.q(`SELECT data FROM runner_release_archives WHERE channel = ? AND file = ?`), string(ch), file).Scan(&b)
	if err != nil {
		return nil, db.translate(err, "release archive "+file)
	}
	return b, nil
}
