// Package statefile writes and reads the runner's JSON records (pods,
// services, executions, environments) so that a crash never leaves half a
// file: a write goes to a temporary file that is renamed over the record.
package statefile

import (
	"encoding/json"
	"fmt"
	"os"
)

// Write stores v as JSON at path (mode 0600), atomically. Writers of one
// path must not overlap: they share the temporary file.
func Write(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
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
