package statefile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// minFree is the free space below which a state directory counts as full:
// records are tiny, but a runner that cannot write them loses track of its
// work across restarts.
const minFree = 1 << 20

// Writable reports whether records can be written in dir now: it creates,
// writes and removes a probe file, and checks that the file system has
// space left. It is cheap enough to run every few seconds, and it fails for
// root too (a directory replaced by a file, a read-only mount, a full disk),
// where permission bits would not.
func Writable(dir string) error {
	f, err := os.CreateTemp(dir, ".health-probe-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, unwrapPath(err))
	}
	_, werr := f.Write([]byte("ok\n"))
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, cerr, rerr); err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, unwrapPath(err))
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return fmt.Errorf("%s: file system status: %w", dir, err)
	}
	if st.Bavail*uint64(st.Bsize) < minFree {
		// No figure in the message: it goes to the control plane on every
		// change, and a shrinking number would be a change every check.
		return fmt.Errorf("the file system of %s is full", dir)
	}
	return nil
}

// unwrapPath drops the probe file's random name from an error, so that the
// same fault gives the same message on every check.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
