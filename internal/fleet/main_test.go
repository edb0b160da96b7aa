package fleet_test

import (
	"os"
	"testing"

	"github.com/runyard/runyard/internal/testutil"
)

// Pods outlive their runner daemons: the package's runners' leftovers are
// killed when its tests end.
func TestMain(m *testing.M) { os.Exit(testutil.RunIsolated(m.Run)) }
