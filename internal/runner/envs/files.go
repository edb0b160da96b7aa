package envs

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// This file mounts an environment's secret files (runnerv1.SecretFile): a
// secret's filePath is an absolute path inside the environment, whose root
// is its workspace, so "/config/token" is written at WORKSPACE/config/token.
// Every operation goes through an os.Root on the workspace, so that nothing
// outside it is ever written or removed, even if a symbolic link appears
// between the check and the write; the check before it exists to say
// clearly which link leads out.
//
// The value is kept nowhere but in the mounted file: the record of what is
// mounted (files.json, beside the workspace) holds paths only, and no error
// or log line is built from a value.

// secretFileMode is the mode of every mounted file.
const secretFileMode = 0o600

// filesRecord is what survives a runner restart: the files written, so
// that one whose secret went while the runner was down is still removed.
type filesRecord struct {
	Paths []string `json:"paths"`
}

func (e *env) filesRecordPath() string { return filepath.Join(e.root(), "files.json") }

// loadFiles reads the record of mounted files once; filesMu is held.
func (e *env) loadFiles() {
	if e.filesLoaded {
		return
	}
	e.filesLoaded = true
	var rec filesRecord
	if err := statefile.Read(e.filesRecordPath(), &rec); err != nil && !errors.Is(err, os.ErrNotExist) {
		e.m.log.Warn("skip an unreadable record of secret files", "environment", e.id, "err", err)
	}
	e.files = rec.Paths
}

// forgetFiles drops the record of mounted files, whose workspace is being
// removed with them; filesMu is held.
func (e *env) forgetFiles() {
	e.files, e.filesLoaded = nil, true
	e.m.mu.Lock()
	e.filesFailure = ""
	e.m.mu.Unlock()
}

// mountFiles converges the workspace on the secret files want, with their
// values in sealed: it writes what is missing or differs, and removes what
// it wrote earlier that want lacks. A file it refuses is not written (an
// earlier version of it is removed) and is named in the environment's
// failure message. It does nothing until the
// environment's content is in place (the clone replaces the workspace). It
// reports whether the failure message changed, so that the caller can
// report the environment again.
func (e *env) mountFiles(want []*runnerv1.SecretFile, sealed map[string][]byte) bool {
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	m := e.m
	m.mu.Lock()
	cloned := e.rec.Cloned
	m.mu.Unlock()
	if !cloned {
		return false
	}
	e.loadFiles()
	if len(want) == 0 && len(e.files) == 0 {
		return e.setFilesFailure("")
	}
	var failures []string
	root, err := os.OpenRoot(e.workspace())
	if err != nil {
		return e.setFilesFailure(fmt.Sprintf("secret files: open the workspace: %v", err))
	}
	defer root.Close()

	wanted := map[string]bool{}
	var written []string
	for _, f := range want {
		p := f.GetPath()
		if wanted[p] {
			continue // the control plane sends one secret per path
		}
		wanted[p] = true
		if err := e.writeFile(root, p, f.GetSecretId(), sealed); err != nil {
			failures = append(failures, fmt.Sprintf("secret file %s: %v; it was not written", p, err))
			continue
		}
		written = append(written, p)
	}
	// What was mounted earlier and not written now goes: its secret went,
	// or its new value was refused, and a file holds the current value or
	// nothing. What cannot be removed stays recorded, for the next try.
	keep := written
	for _, p := range e.files {
		if slices.Contains(keep, p) {
			continue
		}
		if err := removeFile(root, p); err != nil {
			failures = append(failures, fmt.Sprintf("secret file %s: the earlier file stays, as %v", p, err))
			keep = append(keep, p)
		}
	}
	slices.Sort(keep)
	if !slices.Equal(keep, e.files) {
		e.files = keep
		if err := statefile.Write(e.filesRecordPath(), filesRecord{Paths: keep}); err != nil {
			m.log.Warn("save the record of secret files", "environment", e.id, "err", err)
		}
	}
	return e.setFilesFailure(strings.Join(failures, "; "))
}

// setFilesFailure records msg as the secret files' failure and reports
// whether it changed.
func (e *env) setFilesFailure(msg string) bool {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	changed := e.filesFailure != msg
	e.filesFailure = msg
	return changed
}

// relPath turns a secret's filePath into a path relative to the workspace,
// refusing what is not an absolute, clean path naming a file.
func relPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p || strings.ContainsRune(p, 0) {
		return "", errors.New(`the path must be absolute and clean (no ".", ".." or repeated "/") and name a file`)
	}
	rel := strings.TrimPrefix(p, "/")
	if !filepath.IsLocal(rel) {
		return "", errors.New("the path leaves the workspace")
	}
	return rel, nil
}

// writeFile writes the secret secretID at p unless the file already holds
// its value with the right mode.
func (e *env) writeFile(root *os.Root, p, secretID string, sealed map[string][]byte) error {
	rel, err := relPath(p)
	if err != nil {
		return err
	}
	box, ok := sealed[secretID]
	if !ok || e.m.cfg.Open == nil {
		return fmt.Errorf("the value of secret %s is not available to this runner (deleted, or the runner has no key)", secretID)
	}
	if err := e.checkLinks(rel); err != nil {
		return err
	}
	value, err := e.m.cfg.Open(box)
	if err != nil {
		return fmt.Errorf("the value of secret %s cannot be opened with this runner's key: %w", secretID, err)
	}
	defer clear(value)
	if same(root, rel, value) {
		return nil
	}
	if dir := path.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create its directory: %w", err)
		}
	}
	if st, err := root.Lstat(rel); err == nil && st.IsDir() {
		return errors.New("a directory is in its place")
	}
	// A temporary file renamed into place: a reader sees the old value or
	// the new one, never half of it, and a link in the file's place is
	// replaced rather than followed.
	sweepTemps(root, path.Dir(rel))
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	tmp := path.Join(path.Dir(rel), tempPrefix+hex.EncodeToString(suffix[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, secretFileMode)
	if err != nil {
		return fmt.Errorf("create it: %w", err)
	}
	_, werr := f.Write(value)
	// The umask may have taken bits away; the mode is exactly 0600.
	cerr := f.Chmod(secretFileMode)
	if err := errors.Join(werr, cerr, f.Close()); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("write it: %w", err)
	}
	if err := root.Rename(tmp, rel); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("move it into place: %w", err)
	}
	return nil
}

// tempPrefix starts the name of a file being written; only a runner that
// died mid-write leaves one behind.
const tempPrefix = ".runyard-secret-"

// sweepTemps removes what a runner that died while writing a secret file
// in dir left there, which holds a value outside its mounted file.
func sweepTemps(root *os.Root, dir string) {
	d, err := root.Open(dir)
	if err != nil {
		return
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, name := range names {
		if strings.HasPrefix(name, tempPrefix) {
			_ = root.Remove(path.Join(dir, name))
		}
	}
}

// same reports whether rel is a regular file of mode 0600 holding value.
func same(root *os.Root, rel string, value []byte) bool {
	st, err := root.Lstat(rel)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != secretFileMode || st.Size() != int64(len(value)) {
		return false
	}
	f, err := root.Open(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	cur, err := io.ReadAll(io.LimitReader(f, int64(len(value))+1))
	defer clear(cur)
	return err == nil && bytes.Equal(cur, value)
}

// checkLinks refuses a path that leads out of the workspace through a
// symbolic link (in a checkout, say), naming the link. os.Root would refuse
// it too, but with a message that does not say which link.
func (e *env) checkLinks(rel string) error {
	ws := e.workspace()
	wsReal, err := filepath.EvalSymlinks(ws)
	if err != nil {
		return fmt.Errorf("resolve the workspace: %w", err)
	}
	cur := ws
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // created below the last existing part
		}
		if err != nil {
			return fmt.Errorf("inspect %s: %w", "/"+filepath.ToSlash(mustRel(ws, cur)), err)
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		name := "/" + filepath.ToSlash(mustRel(ws, cur))
		escapes := fmt.Errorf("the path escapes the workspace through the symbolic link %s", name)
		target, err := filepath.EvalSymlinks(cur)
		if err != nil {
			// A link to nothing: judge it by where it points.
			l, lerr := os.Readlink(cur)
			if lerr != nil {
				return fmt.Errorf("inspect the symbolic link %s: %w", name, lerr)
			}
			if !filepath.IsAbs(l) {
				l = filepath.Join(filepath.Dir(cur), l)
			}
			if !within(ws, l) && !within(wsReal, l) {
				return escapes
			}
			return fmt.Errorf("the path goes through the symbolic link %s, which leads nowhere", name)
		}
		if !within(wsReal, target) {
			return escapes
		}
	}
	return nil
}

// within reports whether p is dir or below it, lexically.
func within(dir, p string) bool {
	r, err := filepath.Rel(dir, filepath.Clean(p))
	return err == nil && filepath.IsLocal(r)
}

func mustRel(base, p string) string {
	r, err := filepath.Rel(base, p)
	if err != nil {
		return p
	}
	return r
}

// removeFile removes the mounted file at p; a file that is already gone,
// or that something else (a directory, a link) replaced, is left alone.
func removeFile(root *os.Root, p string) error {
	rel, err := relPath(p)
	if err != nil {
		return nil // never written
	}
	st, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("it cannot be inspected: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil
	}
	if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("it cannot be removed: %w", err)
	}
	return nil
}
