package envs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// This file keeps the runner's workspace snapshots (prebuilds): a prebuild
// environment's workspace archived as STATE/snapshots/ID.tar.zst (a tar
// stream compressed with zstd) beside ID.json, what it holds. A new
// environment of the same repository and commit is restored from the newest
// one instead of cloned. The control plane names the snapshots to keep in
// every desired state (DesiredState.snapshots): an archive it does not name
// is deleted, so retention is decided there.
//
// An archive rather than a copy-on-write copy: the runner's state directory
// may be on any file system (reflinks need btrfs or XFS, overlay mounts
// need privileges), and an archive is one file that is written once, read
// by many starts and deleted at once. bench/prebuilds measures a restore
// against a clone plus the same install task.

// snapshotMeta is what a snapshot holds, in ID.json.
type snapshotMeta struct {
	ID string `json:"id"`
	// Repository, Location are the first git initializer's remote and
	// checkout location; Commit is that checkout's HEAD.
	Repository string    `json:"repository"`
	Location   string    `json:"location"`
	Commit     string    `json:"commit"`
	Size       int64     `json:"size"`
	CreatedAt  time.Time `json:"createdAt"`
}

func (m *Manager) snapshotDir() string { return filepath.Join(m.cfg.StateDir, "snapshots") }

func (m *Manager) snapshotPaths(id string) (archive, meta string) {
	return filepath.Join(m.snapshotDir(), id+".tar.zst"), filepath.Join(m.snapshotDir(), id+".json")
}

// writeSnapshot archives dir as snapshot meta.ID and returns meta with its
// size. The archive is written to a temporary file and renamed into place
// after the record, so a snapshot that exists is complete.
func (m *Manager) writeSnapshot(ctx context.Context, dir string, meta snapshotMeta) (snapshotMeta, error) {
	if err := os.MkdirAll(m.snapshotDir(), 0o700); err != nil {
		return meta, fmt.Errorf("snapshot directory: %w", err)
	}
	archive, metaPath := m.snapshotPaths(meta.ID)
	tmp := archive + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return meta, fmt.Errorf("create snapshot: %w", err)
	}
	defer os.Remove(tmp)
	err = writeArchive(ctx, f, dir)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return meta, fmt.Errorf("write snapshot: %w", err)
	}
	st, err := os.Stat(tmp)
	if err != nil {
		return meta, fmt.Errorf("write snapshot: %w", err)
	}
	meta.Size = st.Size()
	if err := statefile.Write(metaPath, meta); err != nil {
		return meta, fmt.Errorf("write snapshot record: %w", err)
	}
	if err := os.Rename(tmp, archive); err != nil {
		return meta, fmt.Errorf("write snapshot: %w", err)
	}
	return meta, nil
}

// writeArchive writes dir's tree (directories, regular files, symbolic
// links; modes and modification times) as a zstd-compressed tar stream.
func writeArchive(ctx context.Context, w io.Writer, dir string) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case info.IsDir(), info.Mode().IsRegular():
		default:
			return nil // sockets, pipes, devices: nothing to keep
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		f.Close()
		return err
	})
	if err != nil {
		zw.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// restoreSnapshot extracts snapshot id into dir, which must be empty. Every
// name is checked to stay inside dir, and links are created last, so that
// no entry is written through one.
func (m *Manager) restoreSnapshot(ctx context.Context, id, dir string) error {
	archive, _ := m.snapshotPaths(id)
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", id, err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", id, err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type link struct{ name, target string }
	var links []link
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	tr := tar.NewReader(zr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read snapshot %s: %w", id, err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("snapshot %s: entry %q leaves the workspace", id, hdr.Name)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{name, hdr.ModTime})
		case tar.TypeReg:
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("restore %s: %w", hdr.Name, err)
			}
			_ = root.Chmod(name, mode)
			_ = root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			links = append(links, link{name, hdr.Linkname})
		}
	}
	for _, l := range links {
		if err := root.Symlink(l.target, l.name); err != nil {
			return fmt.Errorf("restore link %s: %w", l.name, err)
		}
	}
	// Directories last: writing into them moved their times.
	for _, d := range slices.Backward(dirs) {
		_ = root.Chtimes(d.name, d.t, d.t)
	}
	return nil
}

// snapshots returns the complete snapshots on this runner.
func (m *Manager) snapshots() []snapshotMeta {
	entries, err := os.ReadDir(m.snapshotDir())
	if err != nil {
		return nil
	}
	var out []snapshotMeta
	for _, ent := range entries {
		id, ok := strings.CutSuffix(ent.Name(), ".json")
		if !ok || validID(id) != nil {
			continue
		}
		archive, metaPath := m.snapshotPaths(id)
		var meta snapshotMeta
		if statefile.Read(metaPath, &meta) != nil || meta.ID != id {
			continue
		}
		if _, err := os.Stat(archive); err != nil {
			continue
		}
		out = append(out, meta)
	}
	return out
}

// findSnapshot returns the newest kept snapshot of repository at commit
// checked out at location, or nil.
func (m *Manager) findSnapshot(repository, location, commit string) *snapshotMeta {
	m.mu.Lock()
	keep, known := m.keepSnapshots, m.keepKnown
	m.mu.Unlock()
	var best *snapshotMeta
	for _, s := range m.snapshots() {
		if s.Repository != repository || s.Location != location || s.Commit != commit {
			continue
		}
		// Until the control plane named the snapshots to keep, any
		// complete one may serve: it names them on every connect.
		if known && !keep[s.ID] {
			continue
		}
		if best == nil || s.CreatedAt.After(best.CreatedAt) {
			best = &s
		}
	}
	return best
}

// pruneSnapshots deletes every archive (and partial write) that keep lacks.
func (m *Manager) pruneSnapshots(keep map[string]bool) {
	entries, err := os.ReadDir(m.snapshotDir())
	if err != nil {
		return
	}
	for _, ent := range entries {
		name := ent.Name()
		id, _, _ := strings.Cut(name, ".")
		if keep[id] {
			continue
		}
		// A prebuild under way is in keep, so its .tmp is left alone.
		if err := os.Remove(filepath.Join(m.snapshotDir(), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("delete snapshot", "file", name, "err", err)
		} else {
			m.log.Info("deleted snapshot", "file", name)
		}
	}
}

// applySnapshots takes the desired state's snapshots to keep.
func (m *Manager) applySnapshots(refs []*runnerv1.SnapshotRef) {
	keep := map[string]bool{}
	for _, r := range refs {
		keep[r.GetId()] = true
	}
	m.mu.Lock()
	m.keepSnapshots, m.keepKnown = keep, true
	m.mu.Unlock()
	m.pruneSnapshots(keep)
}
