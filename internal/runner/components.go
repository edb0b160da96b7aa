package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/runner/statefile"
	"github.com/runyard/runyard/internal/runners"
)

// The runner reports the health of three components in its status: itself,
// the automations executor (Kubiya's tool-manager) and the pod manager
// (agent-manager). The control plane shows a runner with an unhealthy
// component as DEGRADED with that component's message, and ACTIVE again once
// it recovers (runners.Runner.ApplyReport). The daemon checks them every
// HealthInterval and sends a new status only when a verdict changes, so the
// checks cost the control plane nothing while all is well.

// DefaultHealthInterval is how often the components are checked when
// Config.HealthInterval is zero: each check writes and removes a few small
// files, so every few seconds is cheap and a fault shows within seconds.
const DefaultHealthInterval = 5 * time.Second

// defaultCheckTimeout bounds one check. Checks take their component's lock,
// so a check that does not return in time means the component is wedged;
// the next rounds do not start another check of it until this one returns.
const defaultCheckTimeout = 10 * time.Second

// componentHealth is the verdict on one component; an empty Message means
// healthy.
type componentHealth struct {
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

// probe checks one component.
type probe struct {
	name  string
	check func() error
	// pending receives the result of a check that is still running.
	pending chan error
}

func (d *Daemon) probes() []*probe {
	return []*probe{
		{name: runners.ComponentRunner, check: d.checkRunner},
		{name: runners.ComponentToolManager, check: d.checkAutomations},
		{name: runners.ComponentAgent, check: d.checkPods},
	}
}

// checkRunner: the runner itself works when its state directory takes writes
// (credentials and keys live there) and the lock it holds is still the
// directory's lock file. Being connected is not part of it: the status
// travels on the connection, so a runner that reports is connected, and the
// control plane judges silence on its own (INACTIVE).
func (d *Daemon) checkRunner() error {
	if err := statefile.Writable(d.state.dir); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	return d.state.lockHeld()
}

func (d *Daemon) checkAutomations() error {
	if !d.envsOpen.Load() {
		return errors.New("the automations executor is not open")
	}
	return d.envs.Health()
}

func (d *Daemon) checkPods() error { return d.pods.Health() }

// lockHeld reports whether the lock file this process locked is still the
// one in the state directory. When it was removed or replaced (the directory
// deleted and created again), a second runner process could lock the new
// file and run with the same identity.
func (s *state) lockHeld() error {
	held, err := s.lock.Stat()
	if err != nil {
		return fmt.Errorf("the state dir lock: %w", err)
	}
	onDisk, err := os.Stat(s.path(lockFile))
	if err != nil || !os.SameFile(held, onDisk) {
		return fmt.Errorf("the lock file %s was removed or replaced: another runner process could use this runner's identity", s.path(lockFile))
	}
	return nil
}

func (d *Daemon) healthInterval() time.Duration {
	if d.cfg.HealthInterval > 0 {
		return d.cfg.HealthInterval
	}
	return DefaultHealthInterval
}

// watchHealth checks the components every interval until ctx ends. The
// first round runs before the first connection (Run), so the first status
// is already the real one.
func (d *Daemon) watchHealth(ctx context.Context, probes []*probe) {
	t := time.NewTicker(d.healthInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.checkComponents(probes)
		}
	}
}

// checkComponents runs every probe at once, records the verdicts and, when
// one changed, wakes the session to send a new status.
func (d *Daemon) checkComponents(probes []*probe) {
	expired := make(chan struct{})
	timer := time.AfterFunc(d.checkTimeout, func() { close(expired) })
	defer timer.Stop()
	for _, p := range probes {
		if p.pending == nil {
			ch := make(chan error, 1)
			go func(check func() error) { ch <- check() }(p.check)
			p.pending = ch
		}
	}
	now := make([]componentHealth, len(probes))
	for i, p := range probes {
		now[i].Name = p.name
		var err error
		// A result that is there wins over the deadline, which select
		// alone would pick at random once both are ready.
		select {
		case err = <-p.pending:
			p.pending = nil
		default:
			select {
			case err = <-p.pending:
				p.pending = nil
			case <-expired:
				// Without a figure that grows: the same fault must give
				// the same message, or every round would be a change to
				// report.
				err = fmt.Errorf("its health check did not return within %s: it is stuck", d.checkTimeout)
			}
		}
		if err != nil {
			now[i].Message = err.Error()
		}
	}
	before := d.health.components.Swap(&now)
	if before == nil {
		return
	}
	if slices.Equal(*before, now) {
		return
	}
	for i, c := range now {
		switch was := (*before)[i]; {
		case c.Message != "" && c.Message != was.Message:
			d.log.Warn("component unhealthy", "component", c.Name, "reason", c.Message)
		case c.Message == "" && was.Message != "":
			d.log.Info("component healthy again", "component", c.Name)
		}
	}
	select {
	case d.healthChanged <- struct{}{}:
	default: // a status is already due; it reads the latest verdicts
	}
}

// statusComponents are the components as the status reports them.
func (d *Daemon) statusComponents() []*runnerv1.Component {
	var verdicts []componentHealth
	if p := d.health.components.Load(); p != nil {
		verdicts = *p
	}
	out := make([]*runnerv1.Component, 0, len(verdicts))
	for _, v := range verdicts {
		c := &runnerv1.Component{Name: v.Name, Health: runnerv1.Health_HEALTH_HEALTHY,
			Version: d.cfg.Version, Release: d.cfg.Version, GitSha: d.gitSHA}
		if v.Message != "" {
			c.Health, c.Message = runnerv1.Health_HEALTH_UNHEALTHY, v.Message
		}
		out = append(out, c)
	}
	return out
}

// gitRevision is the commit the binary was built from (stamped at release,
// else as the go command recorded it); empty when unknown.
func gitRevision() string {
	if c := buildinfo.Get().Commit; c != "unknown" {
		return c
	}
	return ""
}
