package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// runnerReconnect is the reconnect part of a runner's own /healthz.
type runnerReconnect struct {
	Connected bool `json:"connected"`
	Reconnect struct {
		Sessions   int64 `json:"sessions"`
		StepAtLoss int64 `json:"stepAtLoss"`
	} `json:"reconnect"`
}

func runnerHealthz(addr string) (runnerReconnect, bool) {
	var h runnerReconnect
	res, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return h, false
	}
	defer res.Body.Close()
	return h, json.NewDecoder(res.Body).Decode(&h) == nil
}

// TestRunner_ReconnectsAfterEachRestart restarts the control plane several
// times in a row (SIGTERM and SIGKILL, same port and data dir) under a real
// runner. After every restart the runner is back, and the outage before it
// started from the backoff's first step: an established stream resets the
// backoff, so the waits do not grow from one restart to the next (they used
// to reset only after a stream had lasted a minute, so the fifth restart in a
// row cost the runner up to 14 s).
func TestRunner_ReconnectsAfterEachRestart(t *testing.T) {
	cfg := serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}}
	s := startServer(t, cfg)
	cfg.DataDir = s.DataDir
	_, exchange := registerRunner(t, s, "reconnect-host")
	health := freePort(t)
	r := startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"), "--health-addr", health)
	eventually(t, "the runner is connected", func() bool {
		h, ok := runnerHealthz(health)
		return ok && h.Connected && h.Reconnect.Sessions == 1
	})
	const restarts = 8
	for i := 1; i <= restarts; i++ {
		if i%2 == 0 {
			s.signal(t, syscall.SIGKILL)
			s.waitExit(t)
		} else {
			s.stop(t)
		}
		eventually(t, "the runner notices the control plane is gone", func() bool {
			h, ok := runnerHealthz(health)
			return ok && !h.Connected
		})
		s = restartServer(t, cfg, s.Addr)
		var h runnerReconnect
		eventually(t, "the runner is back after a restart", func() bool {
			var ok bool
			h, ok = runnerHealthz(health)
			return ok && h.Connected && h.Reconnect.Sessions == int64(i+1)
		})
		if h.Reconnect.StepAtLoss != 0 {
			t.Fatalf("restart %d: the runner's backoff was at step %d when it lost the control plane, want 0 (reset by the stream established before)", i, h.Reconnect.StepAtLoss)
		}
	}
	if strings.Contains(r.Stderr.String(), "the control plane refused") {
		t.Fatalf("the runner was refused:\n%s", r.Stderr)
	}
}

// restartServer starts a server on addr with cfg (the same data dir as the
// one before it), retrying while the port is still held by the old process.
func restartServer(t *testing.T, cfg serverConfig, addr string) *serverProc {
	t.Helper()
	for attempt := 0; ; attempt++ {
		s := spawnServer(t, cfg, addr)
		err := s.waitHealthy()
		if err == nil {
			return s
		}
		if s.exited() && strings.Contains(s.Stderr.String(), "address already in use") && attempt < 20 {
			continue
		}
		t.Fatalf("restarted server did not become healthy: %v\nstderr:\n%s", err, s.Stderr)
	}
}
