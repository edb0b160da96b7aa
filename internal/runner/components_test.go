package runner

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
)

// changed reports whether the daemon was woken to send a new status, and
// consumes the wake-up.
func changed(d *Daemon) bool {
	select {
	case <-d.healthChanged:
		return true
	default:
		return false
	}
}

func testDaemon() *Daemon {
	return &Daemon{
		log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		healthChanged: make(chan struct{}, 1),
		// Generous: the healthy probes of these tests return at once, and
		// only the blocked one waits for it.
		checkTimeout: time.Second,
		gitSHA:       "abc123",
		cfg:          Config{Version: "v1.2.3"},
	}
}

// TestCheckComponents_Changes checks that a status is due only when a
// verdict changes, and that the status carries the verdicts.
func TestCheckComponents_Changes(t *testing.T) {
	d := testDaemon()
	var fault atomic.Value
	fault.Store("")
	probes := []*probe{
		{name: "runner", check: func() error { return nil }},
		{name: "agent-manager", check: func() error {
			if f := fault.Load().(string); f != "" {
				return errors.New(f)
			}
			return nil
		}},
	}
	d.checkComponents(probes)
	if changed(d) {
		t.Fatal("the first check woke the session: nothing was reported before it")
	}
	d.checkComponents(probes)
	if changed(d) {
		t.Fatal("an unchanged verdict woke the session")
	}
	fault.Store("pods dir is not writable")
	d.checkComponents(probes)
	if !changed(d) {
		t.Fatal("a component that became unhealthy did not wake the session")
	}
	comps := d.statusComponents()
	if len(comps) != 2 || comps[0].GetHealth() != runnerv1.Health_HEALTH_HEALTHY ||
		comps[1].GetName() != "agent-manager" || comps[1].GetHealth() != runnerv1.Health_HEALTH_UNHEALTHY ||
		comps[1].GetMessage() != "pods dir is not writable" {
		t.Fatalf("components after the fault: %v", comps)
	}
	for _, c := range comps {
		if c.GetGitSha() != "abc123" || c.GetVersion() != "v1.2.3" {
			t.Fatalf("component %s: git sha %q, version %q", c.GetName(), c.GetGitSha(), c.GetVersion())
		}
	}
	d.checkComponents(probes)
	if changed(d) {
		t.Fatal("the same fault again woke the session")
	}
	fault.Store("the pod manager is closed")
	d.checkComponents(probes)
	if !changed(d) {
		t.Fatal("a new reason did not wake the session")
	}
	fault.Store("")
	d.checkComponents(probes)
	if !changed(d) {
		t.Fatal("a component that recovered did not wake the session")
	}
	for _, c := range d.statusComponents() {
		if c.GetHealth() != runnerv1.Health_HEALTH_HEALTHY || c.GetMessage() != "" {
			t.Fatalf("after recovery: %v", c)
		}
	}
}

// TestCheckComponents_Stuck checks that a check that does not return makes
// its component unhealthy, that no second check of it starts meanwhile, and
// that it is healthy again once the check returns.
func TestCheckComponents_Stuck(t *testing.T) {
	d := testDaemon()
	release := make(chan struct{})
	var calls atomic.Int32
	block := false
	probes := []*probe{
		{name: "runner", check: func() error { return nil }},
		{name: "tool-manager", check: func() error {
			calls.Add(1)
			if block {
				<-release
			}
			return nil
		}},
	}
	d.checkComponents(probes)
	block = true // the probe goroutine of the next round reads it after this write
	d.checkComponents(probes)
	if !changed(d) {
		t.Fatal("a stuck check did not wake the session")
	}
	comps := d.statusComponents()
	if comps[0].GetHealth() != runnerv1.Health_HEALTH_HEALTHY {
		t.Fatalf("a stuck check of another component made the runner unhealthy: %v", comps[0])
	}
	if comps[1].GetHealth() != runnerv1.Health_HEALTH_UNHEALTHY || !strings.Contains(comps[1].GetMessage(), "it is stuck") {
		t.Fatalf("stuck component: %v", comps[1])
	}
	d.checkComponents(probes)
	if changed(d) {
		t.Fatal("a check still stuck woke the session again")
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d checks started, want 2: a stuck check must not be started again while it runs", n)
	}
	close(release)
	d.checkComponents(probes)
	if !changed(d) {
		t.Fatal("the stuck check returned, but the session was not woken")
	}
	if c := d.statusComponents()[1]; c.GetHealth() != runnerv1.Health_HEALTH_HEALTHY {
		t.Fatalf("after the check returned: %v", c)
	}
}
