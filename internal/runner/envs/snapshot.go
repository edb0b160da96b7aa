package envs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

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
//
// Beside each archive the runner keeps a spare: the archive already
// extracted, as ID.spare. A start takes it with one rename, and a new spare
// is extracted in the background for the next start. What a start costs
// is then no longer the tens of thousands of files it creates (a restore
// creates as many as a clone, so it could only ever match one); the price
// is a second copy of each kept snapshot's workspace on disk. A start that
// finds no spare (none made yet, one being extracted, or two starts at
// once) extracts the archive itself.

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

// spareDir is where snapshot id's spare workspace is kept.
func (m *Manager) spareDir(id string) string { return filepath.Join(m.snapshotDir(), id+".spare") }

// makeSpare extracts snapshot id as its spare workspace, in the
// background, unless one is there or under way. It is extracted under
// ID.spare.tmp and renamed into place, so a spare that exists is complete.
func (m *Manager) makeSpare(id string) {
	m.mu.Lock()
	if _, busy := m.sparing[id]; busy || m.ctx.Err() != nil {
		m.mu.Unlock()
		return
	}
	if _, err := os.Stat(m.spareDir(id)); err == nil {
		m.mu.Unlock()
		return
	}
	done := make(chan struct{})
	m.sparing[id] = done
	m.wg.Add(1)
	m.mu.Unlock()
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			delete(m.sparing, id)
			m.mu.Unlock()
			close(done)
		}()
		spare := m.spareDir(id)
		tmp := spare + ".tmp"
		err := os.RemoveAll(tmp)
		if err == nil {
			err = os.Mkdir(tmp, 0o755)
		}
		if err == nil {
			err = m.restoreSnapshot(m.ctx, id, tmp)
		}
		if err == nil {
			err = os.Rename(tmp, spare)
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
			if m.ctx.Err() == nil {
				m.log.Warn("extract spare workspace", "snapshot", id, "err", err)
			}
		}
	}()
}

// takeSpare moves snapshot id's spare workspace to dir, which must be an
// empty directory or absent, waiting for one under way; false when there is
// none (or it could not be moved: another file system, say). The caller
// makes a new spare once its workspace is in place.
func (m *Manager) takeSpare(ctx context.Context, id, dir string) bool {
	m.mu.Lock()
	busy := m.sparing[id]
	m.mu.Unlock()
	if busy != nil {
		// Most of its files are likely written already: waiting costs
		// less than writing them all again.
		select {
		case <-busy:
		case <-ctx.Done():
			return false
		}
	}
	// os.Rename refuses to replace a directory, even an empty one: dir
	// goes first (os.Remove fails on one that is not empty), and comes
	// back empty when there is no spare to take. Two starts at once: one
	// takes it, the other finds it gone.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		m.log.Warn("take spare workspace; extracting instead", "snapshot", id, "err", err)
		return false
	}
	if err := os.Rename(m.spareDir(id), dir); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("take spare workspace; extracting instead", "snapshot", id, "err", err)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			m.log.Warn("take spare workspace", "snapshot", id, "err", err)
		}
		return false
	}
	return true
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
	buf := make([]byte, 64<<10)
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
		// One buffer for every file: io.Copy would take *os.File's
		// WriteTo, which allocates 32 KiB per file.
		_, err = io.CopyBuffer(tw, struct{ io.Reader }{f}, buf)
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
//
// A workspace is tens of thousands of small files, and what a restore costs
// is the system calls per file, not the bytes: each file is created in its
// directory's handle (one openat, instead of one per path component), its
// mode and times are set on the open file (fchmod, futimens) instead of by
// name, and files are written by several goroutines, since creating a file
// mostly waits on the file system.
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

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	files := make(chan restoreFile, 4*restoreWorkers)
	var wg sync.WaitGroup
	for range restoreWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := dirCache{root: root}
			defer w.close()
			for rf := range files {
				if ctx.Err() != nil {
					continue // drain: the reader stops at its next entry
				}
				if err := w.write(rf); err != nil {
					cancel(fmt.Errorf("restore %s: %w", rf.name, err))
				}
			}
		}()
	}
	rest, err := readSnapshot(ctx, zr, root, files)
	close(files)
	wg.Wait()
	if cause := context.Cause(ctx); err == nil && cause != nil {
		err = cause
	}
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	// Every file is written: now the links, and the directories' times
	// (writing into them moved those), deepest first.
	for _, l := range rest.links {
		if err := root.Symlink(l.target, l.name); err != nil {
			return fmt.Errorf("snapshot %s: restore link %s: %w", id, l.name, err)
		}
	}
	for _, d := range slices.Backward(rest.dirs) {
		_ = root.Chtimes(d.name, d.t, d.t)
	}
	return nil
}

// restoreWorkers is how many goroutines create a restore's files.
const restoreWorkers = 4

// restoreInline is the size above which a file is streamed to disk by the
// reader itself instead of being read into memory for a writer: what a
// restore holds in memory stays under about 5*restoreWorkers such files.
const restoreInline = 1 << 20

// restoreFile is one regular file of a snapshot: its name, its directory
// ("." for the top) and base name, mode, time and content.
type restoreFile struct {
	name, dir, base string
	mode            fs.FileMode
	mtime           time.Time
	data            []byte
}

// restoreRest is what a restore does after every file is written.
type restoreRest struct {
	links []struct{ name, target string }
	dirs  []struct {
		name string
		t    time.Time
	}
}

// readSnapshot reads the tar stream r: it creates the directories itself,
// writes large files itself and hands the others to files, and returns the
// links and directory times to set last.
func readSnapshot(ctx context.Context, r io.Reader, root *os.Root, files chan<- restoreFile) (restoreRest, error) {
	var rest restoreRest
	var inline dirCache // the reader's own, for large files
	inline.root = root
	defer inline.close()
	tr := tar.NewReader(r)
	for {
		if ctx.Err() != nil {
			return rest, context.Cause(ctx)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return rest, nil
		}
		if err != nil {
			return rest, fmt.Errorf("read: %w", err)
		}
		name := filepath.FromSlash(strings.TrimSuffix(hdr.Name, "/"))
		if !filepath.IsLocal(name) {
			return rest, fmt.Errorf("entry %q leaves the workspace", hdr.Name)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return rest, err
			}
			rest.dirs = append(rest.dirs, struct {
				name string
				t    time.Time
			}{name, hdr.ModTime})
		case tar.TypeReg:
			rf := restoreFile{name: name, dir: filepath.Dir(name), base: filepath.Base(name), mode: mode, mtime: hdr.ModTime}
			if hdr.Size > restoreInline {
				if err := inline.stream(rf, tr); err != nil {
					return rest, fmt.Errorf("restore %s: %w", hdr.Name, err)
				}
				continue
			}
			rf.data = make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, rf.data); err != nil {
				return rest, fmt.Errorf("read %s: %w", hdr.Name, err)
			}
			select {
			case files <- rf:
			case <-ctx.Done():
				return rest, context.Cause(ctx)
			}
		case tar.TypeSymlink:
			rest.links = append(rest.links, struct{ name, target string }{name, hdr.Linkname})
		}
	}
}

// dirCache creates files under root through a handle on the directory it
// last wrote into: a snapshot lists a directory's files together, so most
// files cost one openat rather than one per component of their path. One
// goroutine uses it.
type dirCache struct {
	root *os.Root
	name string   // the directory d is, relative to root
	d    *os.Root // nil: none open
}

func (c *dirCache) dir(name string) (*os.Root, error) {
	if name == "." {
		return c.root, nil
	}
	if c.d != nil && c.name == name {
		return c.d, nil
	}
	c.close()
	d, err := c.root.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	c.name, c.d = name, d
	return d, nil
}

func (c *dirCache) close() {
	if c.d != nil {
		c.d.Close()
		c.d = nil
	}
}

// write creates rf with its content, mode and time.
func (c *dirCache) write(rf restoreFile) error {
	return c.stream(rf, bytes.NewReader(rf.data))
}

// stream creates rf with content r, its mode and time. The file must not
// exist: O_EXCL, so that nothing already there is written through.
func (c *dirCache) stream(rf restoreFile, r io.Reader) error {
	d, err := c.dir(rf.dir)
	if err != nil {
		return err
	}
	out, err := d.OpenFile(rf.base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, rf.mode)
	if err != nil {
		return err
	}
	if br, ok := r.(*bytes.Reader); ok {
		if br.Len() > 0 {
			_, err = br.WriteTo(out)
		}
	} else {
		_, err = io.Copy(out, r)
	}
	if err == nil {
		// The mode the umask took bits from, and the time, on the open
		// file: by name, each would resolve the path again.
		if um := umask(); um < 0 || rf.mode&fs.FileMode(um) != 0 {
			_ = out.Chmod(rf.mode)
		}
		_ = setTimes(out, rf.mtime)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// umask is the process's file mode creation mask, or -1 when unknown. It
// is read from /proc/self/status (Linux 4.7 and later) rather than set and
// set back with umask(2), which would race with files other goroutines
// create meanwhile.
var umask = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(n)
		}
	}
	return -1
})

// setTimes sets f's access and modification times to t: futimens, which
// is utimensat with the file's descriptor and no path (x/sys/unix has no
// call for it: its Futimes goes through /proc/self/fd by name).
func setTimes(f *os.File, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
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
		// Spares are directories.
		if err := os.RemoveAll(filepath.Join(m.snapshotDir(), name)); err != nil {
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
