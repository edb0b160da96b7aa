package testutil

import (
	"github.com/runyard/runyard/internal/runner/holder"
)

// RunIsolated runs a test binary's tests (run: m.Run) with TMPDIR set to a
// directory of its own, then kills every process holder left under it and
// removes it: see holder.RunIsolated.
func RunIsolated(run func() int) int { return holder.RunIsolated(run) }
