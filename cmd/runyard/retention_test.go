package main

import (
	"testing"
)

// TestServer_DeletedRunnerRetention checks that the server purges a deleted
// runner's tombstone by itself once --deleted-runner-retention has passed:
// with a one-second retention a deleted runner stops being readable (the
// default of 24h keeps it readable, as TestRunner_Lifecycle shows).
func TestServer_DeletedRunnerRetention(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken},
		Args: []string{"--deleted-runner-retention", "1s"}})
	r := createRunner(t, s, "short-lived", "linux-host")
	s.mustRun(t, adminToken, "runners", "delete", "--yes", r.RunnerID)
	// Right after the deletion it is DELETED or, on a slow machine, already
	// purged; never anything else.
	if got, ok := phaseOf(t, s, r.RunnerID); ok && got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" {
		t.Fatalf("right after the deletion: phase %q", got.Runner.Status.Phase)
	}
	eventually(t, "the tombstone is purged", func() bool {
		_, ok := phaseOf(t, s, r.RunnerID)
		return !ok
	})
}

func TestServer_DeletedRunnerRetentionNegative(t *testing.T) {
	t.Parallel()
	args := []string{"--deleted-runner-retention", "-1s"}
	code, s := runServerToExit(t, serverConfig{Args: args, Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	if code == 0 {
		t.Errorf("exit code = 0, want non-zero")
	}
	requireServerError(t, "server --deleted-runner-retention -1s", s.Stderr.String(), "--deleted-runner-retention", "negative")
}
