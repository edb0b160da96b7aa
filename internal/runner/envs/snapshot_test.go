package envs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestSnapshot_RoundTrip archives a tree and restores it: contents, modes
// (those a umask would take bits from too), modification times, links,
// empty files and one file large enough to be streamed by the reader.
func TestSnapshot_RoundTrip(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	when := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	type file struct {
		mode fs.FileMode
		data []byte
	}
	files := map[string]file{
		"README":             {0o644, []byte("hello\n")},
		"empty":              {0o600, nil},
		"bin/run":            {0o755, []byte("#!/bin/sh\n")},
		"shared/group-write": {0o664, []byte("g")},
		"big/blob":           {0o644, bytes.Repeat([]byte("0123456789abcdef"), (restoreInline/16)+100)},
	}
	for i := range 300 {
		files[fmt.Sprintf("deep/a/b/c/d%02d/f%03d.txt", i%7, i)] = file{0o644, fmt.Appendf(nil, "file %d\n", i)}
	}
	for name, f := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bin/run", filepath.Join(src, "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "deep"), when, when); err != nil {
		t.Fatal(err)
	}

	m := &Manager{cfg: Config{StateDir: filepath.Join(base, "state")}}
	if _, err := m.writeSnapshot(context.Background(), src, snapshotMeta{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(base, "dst")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.restoreSnapshot(context.Background(), "s1", dst); err != nil {
		t.Fatal(err)
	}
	for name, f := range files {
		p := filepath.Join(dst, name)
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.data) {
			t.Errorf("%s: content of %d bytes, want %d", name, len(got), len(f.data))
		}
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", name, st.Mode().Perm(), f.mode)
		}
		if !st.ModTime().Equal(when) {
			t.Errorf("%s: modified %v, want %v", name, st.ModTime(), when)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "run")); err != nil || target != "bin/run" {
		t.Errorf("link: %q, %v", target, err)
	}
	if st, err := os.Stat(filepath.Join(dst, "deep")); err != nil || !st.ModTime().Equal(when) {
		t.Errorf("directory time: %v, %v", st.ModTime(), err)
	}
}

// TestSnapshot_RestoreRefuses: an entry outside the workspace, and a file
// whose directory the archive lacks, fail the restore with the entry
// named, and nothing is written outside.
func TestSnapshot_RestoreRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		want    string
	}{
		{"escape", []string{"a/", "a/x", "../outside"}, "leaves the workspace"},
		{"no directory", []string{"a/", "a/x", "b/y"}, "b/y"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			m := &Manager{cfg: Config{StateDir: filepath.Join(base, "state")}}
			archive, _ := m.snapshotPaths("s1")
			if err := os.MkdirAll(filepath.Dir(archive), 0o700); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf)
			tw := tar.NewWriter(zw)
			for _, name := range tc.entries {
				hdr := &tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg, Size: 1}
				if strings.HasSuffix(name, "/") {
					hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
				}
				if err := tw.WriteHeader(hdr); err != nil {
					t.Fatal(err)
				}
				if hdr.Size > 0 {
					tw.Write([]byte("x"))
				}
			}
			tw.Close()
			zw.Close()
			if err := os.WriteFile(archive, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(base, "ws", "dst")
			if err := os.MkdirAll(dst, 0o755); err != nil {
				t.Fatal(err)
			}
			err := m.restoreSnapshot(context.Background(), "s1", dst)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore: %v, want an error naming %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(base, "ws", "outside")); err == nil {
				t.Error("an entry was written outside the workspace")
			}
		})
	}
}

// TestSnapshot_Spare: a start takes the spare workspace with a rename (its
// files are the archive's), a new one is made after it, two starts at
// once get one spare between them, and a start without a spare gets false
// and extracts the archive itself.
func TestSnapshot_Spare(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.MkdirAll(filepath.Join(src, "repo", "deps"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "repo", "deps", "installed"), []byte("yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, ctx := snapshotManager(t, base, src)
	ws := func(name string) string {
		d := filepath.Join(base, "envs", name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if m.takeSpare(ctx, "s1", ws("none")) {
		t.Fatal("took a spare before any was made")
	}
	m.makeSpare("s1")
	// takeSpare waits for the one under way.
	a := ws("a")
	if !m.takeSpare(ctx, "s1", a) {
		t.Fatal("no spare after makeSpare")
	}
	if b, err := os.ReadFile(filepath.Join(a, "repo", "deps", "installed")); string(b) != "yes\n" {
		t.Fatalf("spare content %q, %v", b, err)
	}
	m.makeSpare("s1")
	got := make(chan bool, 2)
	for _, name := range []string{"b", "c"} {
		d := ws(name)
		go func() { got <- m.takeSpare(ctx, "s1", d) }()
	}
	if n := btoi(<-got) + btoi(<-got); n != 1 {
		t.Fatalf("%d starts took the one spare, want 1", n)
	}
	m.makeSpare("s1")
	m.wg.Wait()
	// A pruned snapshot takes its spare along.
	m.pruneSnapshots(map[string]bool{})
	if _, err := os.Stat(m.spareDir("s1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("spare after prune: %v", err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestSnapshot_StartDuringSpareExtraction: starts that arrive while the
// spare workspace is being extracted (the archive is a pipe the test feeds,
// so the extraction stops half way until the test goes on) never see the
// half-extracted tree: the spare appears only complete, the starts wait
// for it, one of them takes it whole and the others get an empty
// directory to extract the archive into themselves, which they do in
// full.
func TestSnapshot_StartDuringSpareExtraction(t *testing.T) {
	base := t.TempDir()
	src := filepath.Join(base, "src")
	const nfiles = 400
	for i := range nfiles {
		p := filepath.Join(src, "repo", fmt.Sprintf("d%02d", i%10), fmt.Sprintf("f%03d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		// Incompressible enough that half the archive is half the files.
		if err := os.WriteFile(p, bytes.Repeat(fmt.Appendf(nil, "%d-%x;", i, i*7919), 300), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, ctx := snapshotManager(t, base, src)
	archive, _ := m.snapshotPaths("s1")
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	// The archive becomes a pipe: the extraction reads what the test
	// writes, when it writes it.
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(archive, 0o600); err != nil {
		t.Fatal(err)
	}
	m.makeSpare("s1")
	w, err := os.OpenFile(archive, os.O_WRONLY, 0) // waits for the extraction to open it
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}
	// Half way: files are being written under the temporary name, and
	// the spare itself is not there.
	tmp := m.spareDir("s1") + ".tmp"
	deadline := time.Now().Add(30 * time.Second)
	for n := 0; n == 0; {
		n = countFiles(t, tmp)
		if time.Now().After(deadline) {
			t.Fatal("the spare's extraction wrote nothing from half the archive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(m.spareDir("s1")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a half-extracted spare is visible: %v", err)
	}

	// Three starts arrive now.
	type start struct {
		dir  string
		took bool
	}
	got := make(chan start, 3)
	for _, name := range []string{"a", "b", "c"} {
		d := filepath.Join(base, "envs", name, "workspace")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		go func() { got <- start{d, m.takeSpare(ctx, "s1", d)} }()
	}
	if _, err := w.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	w.Close()
	var starts []start
	for range 3 {
		starts = append(starts, <-got)
	}
	// The archive is a file again for the starts that extract it.
	if err := os.Remove(archive); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(archive, data, 0o600); err != nil {
		t.Fatal(err)
	}
	took := 0
	for _, s := range starts {
		if s.took {
			took++
		} else {
			if n := countFiles(t, s.dir); n != 0 {
				t.Fatalf("a start without the spare got %d files in its workspace, want an empty one", n)
			}
			if err := m.restoreSnapshot(ctx, "s1", s.dir); err != nil {
				t.Fatalf("a start without the spare extracts the archive: %v", err)
			}
		}
		if n := countFiles(t, s.dir); n != nfiles {
			t.Errorf("workspace %s (spare taken: %v) has %d files, want %d", s.dir, s.took, n, nfiles)
		}
		p := filepath.Join(s.dir, "repo", "d09", fmt.Sprintf("f%03d", nfiles-1))
		if b, err := os.ReadFile(p); err != nil || !bytes.HasPrefix(b, fmt.Appendf(nil, "%d-", nfiles-1)) {
			t.Errorf("the archive's last file in %s: %d bytes, %v", s.dir, len(b), err)
		}
	}
	if took != 1 {
		t.Fatalf("%d starts took the one spare, want 1", took)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the extraction's temporary tree is left: %v", err)
	}
}

// countFiles counts the regular files under dir; 0 when it is absent.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // renamed away meanwhile
			}
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return n
}

// snapshotManager is a manager with state under base that keeps spares,
// holding snapshot s1 of src; it stops with the test.
func snapshotManager(t *testing.T, base, src string) (*Manager, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: Config{StateDir: filepath.Join(base, "state")}, log: slog.New(slog.DiscardHandler),
		ctx: ctx, cancel: cancel, sparing: map[string]chan struct{}{}}
	t.Cleanup(func() { cancel(); m.wg.Wait() })
	if _, err := m.writeSnapshot(ctx, src, snapshotMeta{ID: "s1"}); err != nil {
		t.Fatal(err)
	}
	return m, ctx
}
