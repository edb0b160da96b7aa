package runner_test

import (
	"os"
	"testing"

	"github.com/runyard/runyard/internal/testutil"
)

// Services and pods outlive their runner daemons: the package's runners'
// leftovers are killed when its tests end.
func TestMain(m *testing.M) { os.Exit(testutil.RunIsolated(m.Run)) }
