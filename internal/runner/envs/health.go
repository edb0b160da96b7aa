package envs

import (
	"errors"
	"fmt"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// Health reports whether the environments and the executor under them can
// do their work now: the manager is not closed, its lock is free (the loop
// that forwards the executor's events takes it for every event, so a lock
// held for good is a stuck loop: the caller bounds the call's duration), the
// workspaces' directory takes writes, and the executor is healthy
// (automations.Executor.Health). The error says what is wrong, in words for
// the runner's status message.
func (m *Manager) Health() error {
	if m.ctx.Err() != nil {
		return errors.New("the automations executor is closed")
	}
	m.mu.Lock() // taking the lock is the check: see above
	m.mu.Unlock()
	if err := statefile.Writable(m.dir); err != nil {
		return fmt.Errorf("environments state: %w", err)
	}
	return m.exec.Health()
}
