package envs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// TestMountFiles covers the paths the end-to-end test does not: links that
// stay inside the workspace, a link in the file's own place, unclean and
// relative paths, a directory in the way, a missing value, and removal
// after a runner restart.
func TestMountFiles(t *testing.T) {
	state := t.TempDir()
	// The "sealed" values are the values themselves here: sealing is
	// tested with the runner's key elsewhere.
	m, err := New(Config{StateDir: state, Open: func(b []byte) ([]byte, error) { return slices.Clone(b), nil }})
	if err != nil {
		t.Fatal(err)
	}
	newEnv := func() *env {
		e := m.newEnv("env-1")
		e.rec.Cloned = true
		return e
	}
	e := newEnv()
	ws := e.workspace()
	outside := t.TempDir()
	for _, dir := range []string{ws, filepath.Join(ws, "inside"), filepath.Join(ws, "dir")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{"in": "inside", "out": outside, "outfile": filepath.Join(outside, "f")} {
		if err := os.Symlink(target, filepath.Join(ws, name)); err != nil {
			t.Fatal(err)
		}
	}
	sealed := map[string][]byte{"a": []byte("value-a"), "b": []byte("value-b")}
	files := []*runnerv1.SecretFile{
		{Path: "/a/b/c", SecretId: "a"},
		{Path: "/in/x", SecretId: "b"},
		{Path: "/out/x", SecretId: "a"},
		{Path: "/outfile", SecretId: "a"},
		{Path: "/../x", SecretId: "a"},
		{Path: "rel", SecretId: "a"},
		{Path: "/dir", SecretId: "a"},
		{Path: "/nothing", SecretId: "gone"},
	}
	if !e.mountFiles(files, sealed) {
		t.Fatal("refused files did not change the failure message")
	}
	for _, want := range []string{
		"secret file /out/x: the path escapes the workspace through the symbolic link /out",
		"secret file /outfile: the path escapes the workspace through the symbolic link /outfile",
		"secret file /../x: the path must be absolute and clean",
		"secret file rel: the path must be absolute and clean",
		"secret file /dir: a directory is in its place",
		"secret file /nothing: the value of secret gone is not available",
	} {
		if !strings.Contains(e.filesFailure, want) {
			t.Errorf("failure %q lacks %q", e.filesFailure, want)
		}
	}
	if strings.Contains(e.filesFailure, "value-") {
		t.Errorf("a value is in the failure message")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("written outside the workspace: %v", entries)
	}
	read := func(rel string) string {
		t.Helper()
		p := filepath.Join(ws, rel)
		st, err := os.Lstat(p)
		if err != nil {
			return ""
		}
		if st.Mode().Perm() != secretFileMode || !st.Mode().IsRegular() {
			t.Errorf("%s: mode %v", rel, st.Mode())
		}
		b, _ := os.ReadFile(p)
		return string(b)
	}
	if read("a/b/c") != "value-a" || read("inside/x") != "value-b" {
		t.Fatalf("mounted files: %q %q", read("a/b/c"), read("inside/x"))
	}

	// A new value is written; the same failures are no change.
	sealed["a"] = []byte("value-a2")
	if e.mountFiles(files, sealed) {
		t.Error("the same failures changed the failure message")
	}
	if read("a/b/c") != "value-a2" {
		t.Errorf("after the update: %q", read("a/b/c"))
	}

	// A file whose new value is refused does not keep the old one.
	delete(sealed, "b")
	e.mountFiles(files, sealed)
	if !strings.Contains(e.filesFailure, "secret file /in/x: the value of secret b is not available") {
		t.Errorf("failure %q does not name /in/x", e.filesFailure)
	}
	if _, err := os.Lstat(filepath.Join(ws, "inside", "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file whose value is refused kept its old one: %v", err)
	}
	sealed["b"] = []byte("value-b")
	e.mountFiles(files, sealed)
	if read("inside/x") != "value-b" {
		t.Errorf("after the value came back: %q", read("inside/x"))
	}

	// What the set lacks goes; the failure clears.
	if !e.mountFiles(files[:1], sealed) || e.filesFailure != "" {
		t.Errorf("failure after the refused files went: %q", e.filesFailure)
	}
	if _, err := os.Lstat(filepath.Join(ws, "inside", "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file whose secret went: %v", err)
	}

	// After a restart the record still knows what to remove; it holds
	// paths, never values.
	rec, err := os.ReadFile(e.filesRecordPath())
	if err != nil || strings.Contains(string(rec), "value-") || !strings.Contains(string(rec), "/a/b/c") {
		t.Fatalf("record of mounted files: %s %v", rec, err)
	}
	e = newEnv()
	e.mountFiles(nil, nil)
	if _, err := os.Lstat(filepath.Join(ws, "a", "b", "c")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file whose secret went while the runner was down: %v", err)
	}
	// Symbolic links and directories it did not write are left alone.
	for _, name := range []string{"in", "out", "outfile", "dir"} {
		if _, err := os.Lstat(filepath.Join(ws, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestMountFiles_SweepsTemps: a temporary file a runner left when it died
// mid-write (holding a value) goes with the next write in its directory.
func TestMountFiles_SweepsTemps(t *testing.T) {
	m, err := New(Config{StateDir: t.TempDir(), Open: func(b []byte) ([]byte, error) { return slices.Clone(b), nil }})
	if err != nil {
		t.Fatal(err)
	}
	e := m.newEnv("env-1")
	e.rec.Cloned = true
	dir := filepath.Join(e.workspace(), "cfg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, tempPrefix+"0123456789abcdef")
	if err := os.WriteFile(left, []byte("old-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mountFiles([]*runnerv1.SecretFile{{Path: "/cfg/token", SecretId: "a"}}, map[string][]byte{"a": []byte("v")})
	if _, err := os.Lstat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the leftover temporary file: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "token")); err != nil || string(b) != "v" {
		t.Errorf("the mounted file: %q %v", b, err)
	}
}
