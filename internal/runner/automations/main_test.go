package automations

import (
	"os"
	"testing"

	"github.com/runyard/runyard/internal/runner/holder"
)

// Services and steps outlive their executors: what a failed test leaves is
// killed when the package's tests end.
func TestMain(m *testing.M) { os.Exit(holder.RunIsolated(m.Run)) }
