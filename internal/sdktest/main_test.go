package sdktest

import (
	"os"
	"testing"

	"github.com/runyard/runyard/internal/testutil"
)

// The scenario's services outlive the runner daemon under their holders:
// what is left when the tests end is killed.
func TestMain(m *testing.M) { os.Exit(testutil.RunIsolated(m.Run)) }
