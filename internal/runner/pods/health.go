package pods

import (
	"errors"
	"fmt"

	"github.com/runyard/runyard/internal/runner/statefile"
)

// Health reports whether the manager can do its work now: it is open and not
// closed, its event queue has not ended (a consumer that stopped reading is
// not detected), and its state directory takes
// records (a pod whose exit record cannot be written would be started again
// after a runner restart). The error says what is wrong, in words for the
// runner's status message.
//
// Health takes the manager's lock like every operation does; a caller that
// bounds the call's duration therefore also learns when the manager is
// wedged.
func (m *Manager) Health() error {
	m.mu.Lock()
	err := m.usableLocked()
	m.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotOpen):
		return errors.New("the pod manager is not open")
	case errors.Is(err, ErrClosed):
		return errors.New("the pod manager is closed")
	case err != nil:
		return err
	}
	if m.events.Stopped() {
		return errors.New("the pod manager's event queue stopped delivering")
	}
	if err := statefile.Writable(m.dir); err != nil {
		return fmt.Errorf("pod state: %w", err)
	}
	return nil
}
