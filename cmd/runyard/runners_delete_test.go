package main

import (
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestRunners_CLI_DeleteForce checks that `runyard runners delete ID --force`
// removes a runner that has connected at once, without waiting for its
// daemon to stop its work and confirm, as a delete without --force does.
func TestRunners_CLI_DeleteForce(t *testing.T) {
	s := startCLIServer(t)
	connect := func(t *testing.T, name string) (string, *runnerProc) {
		t.Helper()
		id, exchange := registerRunner(t, s, name)
		p := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
		eventually(t, "the runner is ACTIVE", func() bool {
			got, _ := phaseOf(t, s, id)
			return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
		})
		return id, p
	}
	deleteForce := func(t *testing.T, id, name string) {
		t.Helper()
		out := s.mustRun(t, adminToken, "runners", "delete", "--yes", id, "--force")
		if !strings.Contains(out, id) || !strings.Contains(out, "deleted") {
			t.Errorf("delete --force output: %q", out)
		}
		// The very next read, with no polling, finds the runner gone: not
		// found, or at most a record of it in phase DELETED.
		got, found := phaseOf(t, s, id)
		if found && got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" {
			t.Errorf("right after delete --force: phase %q, want the runner gone or DELETED", got.Runner.Status.Phase)
		}
		if names := listRunnerNames(t, s, adminToken); slices.Contains(names, name) {
			t.Errorf("list after delete --force still shows the runner: %v", names)
		}
	}

	t.Run("Silent", func(t *testing.T) {
		// A runner that connected and then died cannot confirm a deletion:
		// without --force it stays DELETING; --force removes it.
		id, p := connect(t, "silent-host")
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.waitExit(t)
		s.mustRun(t, adminToken, "runners", "delete", "--yes", id)
		got, ok := phaseOf(t, s, id)
		if !ok || got.Runner.Status.Phase != "RUNNER_PHASE_DELETING" {
			t.Fatalf("after delete without --force: found %v, phase %q; want the runner DELETING", ok, got.Runner.Status.Phase)
		}
		deleteForce(t, id, "silent-host")
	})

	t.Run("Connected", func(t *testing.T) {
		// A live daemon's credentials go with its runner: it exits saying
		// it was deleted.
		id, p := connect(t, "force-host")
		deleteForce(t, id, "force-host")
		if code := p.waitExit(t); code != 5 {
			t.Errorf("runner exit code after a forced deletion = %d, want 5 (unauthenticated)", code)
		}
		requireOneLine(t, "runner stderr", lastLine(p.Stderr.String()), "deleted")
	})
}

// TestRunners_CLI_DeleteOffline checks that deleting an offline runner
// without --force says that the control plane waits for the runner to
// confirm, and names the command that removes it now.
func TestRunners_CLI_DeleteOffline(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}, Args: []string{"--runner-timeout", "1s"}})
	id, exchange := registerRunner(t, s, "offline-host")
	p := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
	eventually(t, "the runner is ACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_ACTIVE"
	})
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.waitExit(t)
	eventually(t, "the runner is INACTIVE", func() bool {
		got, _ := phaseOf(t, s, id)
		return got.Runner.Status.Phase == "RUNNER_PHASE_INACTIVE"
	})

	out := s.mustRun(t, adminToken, "runners", "delete", "--yes", id)
	for _, want := range []string{"waits for the runner to stop its work and confirm", "offline (INACTIVE)", "runyard runners delete " + id + " --force"} {
		if !strings.Contains(out, want) {
			t.Errorf("delete of an offline runner printed %q, want it to say %q", out, want)
		}
	}
	if strings.Contains(out, "Runner "+id+" deleted") {
		t.Errorf("delete of an offline runner claims it is deleted: %q", out)
	}
	if got, _ := phaseOf(t, s, id); got.Runner.Status.Phase != "RUNNER_PHASE_DELETING" {
		t.Fatalf("after delete without --force: phase %q, want DELETING", got.Runner.Status.Phase)
	}
	// The hint works as printed.
	if out := s.mustRun(t, adminToken, "runners", "delete", "--yes", id, "--force"); !strings.Contains(out, "deleted") {
		t.Errorf("delete --force printed %q", out)
	}
	if got, found := phaseOf(t, s, id); found && got.Runner.Status.Phase != "RUNNER_PHASE_DELETED" {
		t.Errorf("after delete --force: phase %q, want DELETED", got.Runner.Status.Phase)
	}
}
