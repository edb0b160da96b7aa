package testutil

import (
	"fmt"
	"os"

	"github.com/runyard/runyard/internal/runner/holder"
)

// RunIsolated runs a test binary's tests (run: m.Run) with TMPDIR set to a directory of
// its own, then kills every process holder left under it and removes it.
// Services and pods outlive their runner daemons under holders by design,
// so a test package that runs runners ends their work this way; other
// packages' holders, under other directories, are left alone.
func RunIsolated(run func() int) int {
	root, err := os.MkdirTemp("", "runyard-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create the test directory:", err)
		return 1
	}
	prev, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", root)
	code := run()
	if had {
		os.Setenv("TMPDIR", prev)
	} else {
		os.Unsetenv("TMPDIR")
	}
	holder.KillUnder(root)
	os.RemoveAll(root)
	return code
}
