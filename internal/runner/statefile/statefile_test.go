package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// recordSyncs makes sync log what it flushes, with the state of the record
// at that moment, for the length of the test.
func recordSyncs(t *testing.T, record string) *[]string {
	t.Helper()
	var log []string
	prev := sync
	sync = func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		entry := filepath.Base(f.Name())
		if st.IsDir() {
			entry = "dir"
		}
		if b, err := os.ReadFile(record); err == nil {
			entry += " record=" + string(b)
		} else {
			entry += " record=missing"
		}
		log = append(log, entry)
		return prev(f)
	}
	t.Cleanup(func() { sync = prev })
	return &log
}

func TestWrite_SyncsFileThenDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.json")
	syncs := recordSyncs(t, path)
	if err := Write(path, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, map[string]int{"a": 2}); err != nil {
		t.Fatal(err)
	}
	// The temporary file is synced while the record still holds the old
	// content (before the rename); the directory after it.
	want := []string{
		"rec.json.tmp record=missing",
		"dir record={\"a\":1}\n",
		"rec.json.tmp record={\"a\":1}\n",
		"dir record={\"a\":2}\n",
	}
	if !slices.Equal(*syncs, want) {
		t.Fatalf("syncs:\n got %q\nwant %q", *syncs, want)
	}
	var got map[string]int
	if err := Read(path, &got); err != nil || got["a"] != 2 {
		t.Fatalf("read back %v, %v", got, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("record mode: %v, %v", st.Mode(), err)
	}
}

func TestWrite_FailedSyncKeepsOldRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.json")
	if err := Write(path, "old"); err != nil {
		t.Fatal(err)
	}
	prev := sync
	sync = func(*os.File) error { return errors.New("disk gone") }
	t.Cleanup(func() { sync = prev })
	if err := Write(path, "new"); err == nil {
		t.Fatal("write succeeded although the sync failed")
	}
	var got string
	if err := Read(path, &got); err != nil || got != "old" {
		t.Fatalf("record after a failed write: %q, %v", got, err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temporary file left behind: %v", err)
	}
}
