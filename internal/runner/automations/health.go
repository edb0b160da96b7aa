package automations

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// Health reports whether the executor can do its work now: it is not closed,
// its event queue has not ended (a consumer that stopped reading is not
// detected), and the directories of its records and
// logs take writes (a service or execution whose record cannot be written is
// lost on the next runner restart). The error says what is wrong, in words
// for the runner's status message.
//
// Health takes the executor's lock like every operation does; a caller that
// bounds the call's duration therefore also learns when the executor is
// wedged.
func (e *Executor) Health() error {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return errors.New("the automations executor is closed")
	}
	if e.events.Stopped() {
		return errors.New("the automations executor's event queue stopped delivering")
	}
	for _, sub := range []string{servicesDir, executionsDir, logsDir, outputsDir} {
		if err := statefile.Writable(filepath.Join(e.cfg.Dir, sub)); err != nil {
			return fmt.Errorf("automations state: %w", err)
		}
	}
	return nil
}
