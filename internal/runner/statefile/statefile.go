// Package statefile writes and reads the runner's JSON records (pods,
// services, executions, environments) so that a crash never leaves half a
// file: a write goes to a temporary file that is synced and renamed over the
// record, and the directory is synced after the rename, so that a power loss
// leaves either the old record or the new one, never an empty file (ext4 and
// XFS may otherwise persist the rename before the data).
package statefile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// sync flushes a file or a directory to stable storage. It is a variable so
// that tests can see which files were synced, in which order.
var sync = func(f *os.File) error { return f.Sync() }

// Write stores v as JSON at path (mode 0600), atomically and durably.
// Writers of one path must not overlap: they share the temporary file.
func Write(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteFile(path, append(b, '\n'), 0o600)
}

// WriteFile stores data at path with mode perm, atomically and durably: it
// writes a temporary file beside path, syncs it, renames it over path and
// syncs the directory, so that the rename itself survives a crash.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := writeFile(path, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = sync(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return sync(d)
}

// Read decodes the JSON at path into v. A missing file is the os error
// (errors.Is(err, fs.ErrNotExist)); a bad one says it is corrupt.
func Read(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt: %w", path, err)
	}
	return nil
}
