package automations

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Phase is a service's phase, as the runner reports it.
type Phase string

const (
	PhaseStarting Phase = "starting"
	PhaseRunning  Phase = "running"
	PhaseStopping Phase = "stopping"
	PhaseStopped  Phase = "stopped"
	PhaseFailed   Phase = "failed"
)

// ServiceSpec is a service as the control plane wants it.
type ServiceSpec struct {
	ID string
	// Session identifies one wish to run the service: a run that ended is
	// not started again until the session changes.
	Session string
	// Run is the desired phase: running (true) or stopped.
	Run bool
	// Start runs the service; Ready, when its script is set, is probed
	// every ReadyInterval until it exits 0; Stop, when set, stops it.
	Start, Ready, Stop Command
}

// ServiceStatus is a service's state on the runner.
type ServiceStatus struct {
	ID             string `json:"id"`
	Session        string `json:"session"`
	Phase          Phase  `json:"phase"`
	FailureMessage string `json:"failureMessage,omitempty"`
	// LogID names the log of the latest run (ReadLog).
	LogID string `json:"logId,omitempty"`
	// Version increases with every change, across runner restarts too.
	Version uint64 `json:"version"`
}

// serviceRecord is a service's file: enough for a later runner process to
// kill what a run left and to know whether its session ended.
type serviceRecord struct {
	Status ServiceStatus `json:"status"`
	// Ended says the session's run ended (by itself or by a stop); a run
	// merely interrupted by the runner's end is started again.
	Ended  bool          `json:"ended"`
	Groups []proc.Record `json:"groups,omitempty"`
}

type stopReason int

const (
	stopRequested stopReason = iota + 1
	stopShutdown             // the runner stops: the run is interrupted, not ended
)

type service struct {
	e  *Executor
	id string

	mu      sync.Mutex
	spec    ServiceSpec
	st      ServiceStatus
	running bool            // a run goroutine is active
	stop    chan stopReason // the run's stop request; capacity 1
	force   chan struct{}   // closed to kill the run at once
	// ended and endedSession: the run of that session ended, so it is not
	// run again.
	ended        bool
	endedSession string
	forgotten    bool // gone from the desired set: drop once stopped

	saveMu sync.Mutex // serializes writes of the record
}

func (s *service) status() *ServiceStatus {
	st := s.st
	return &st
}

// EnsureServices converges on specs, the whole desired set: services to run
// start (once per session), services to stop or missing from the set stop.
func (e *Executor) EnsureServices(specs []ServiceSpec) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	want := make(map[string]bool, len(specs))
	for _, sp := range specs {
		if err := validID("service", sp.ID); err != nil {
			return err
		}
		want[sp.ID] = true
		s := e.services[sp.ID]
		if s == nil {
			s = &service{e: e, id: sp.ID, st: ServiceStatus{ID: sp.ID, Phase: PhaseStopped}}
			e.services[sp.ID] = s
		}
		s.ensure(sp)
	}
	for id, s := range e.services {
		if !want[id] {
			if s.forget() {
				delete(e.services, id)
				_ = os.Remove(filepath.Join(e.cfg.Dir, servicesDir, id+".json"))
			}
		}
	}
	return nil
}

// ErrClosed is returned once the executor is closed.
var ErrClosed = fmt.Errorf("the automations executor is closed")

// ensure applies sp; e.mu is held.
func (s *service) ensure(sp ServiceSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spec, s.forgotten = sp, false
	switch {
	case sp.Run && !s.running && !(s.ended && s.endedSession == sp.Session):
		s.launchLocked()
	case !sp.Run && s.running:
		s.requestStopLocked(stopRequested)
	}
}

// forget stops a service missing from the desired set; it reports whether
// it can be dropped now. e.mu is held.
func (s *service) forget() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgotten = true
	if s.running {
		s.requestStopLocked(stopRequested)
		return false
	}
	return true
}

func (s *service) launchLocked() {
	s.running = true
	s.stop = make(chan stopReason, 1)
	s.force = make(chan struct{})
	s.e.wg.Add(1)
	go s.run(s.spec, s.stop, s.force)
}

func (s *service) requestStop(r stopReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		s.requestStopLocked(r)
	}
}

func (s *service) requestStopLocked(r stopReason) {
	select {
	case s.stop <- r:
	default: // a stop is already asked for
	}
}

func (s *service) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		select {
		case <-s.force:
		default:
			close(s.force)
		}
	}
}

// set records a new status and reports it.
func (s *service) set(update func(*ServiceStatus)) {
	s.mu.Lock()
	update(&s.st)
	s.st.Version = s.e.nextVersion()
	st := s.status()
	s.mu.Unlock()
	s.e.emit(Event{Service: st})
	s.e.mu.Lock()
	close(s.e.svcChanged)
	s.e.svcChanged = make(chan struct{})
	s.e.mu.Unlock()
}

func (s *service) save(ended bool, groups ...*proc.Group) {
	s.mu.Lock()
	rec := serviceRecord{Status: s.st, Ended: ended}
	s.mu.Unlock()
	for _, g := range groups {
		if g != nil {
			rec.Groups = append(rec.Groups, g.Record(s.e.bootID))
		}
	}
	// One writer at a time: they share the record's temporary file.
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if err := statefile.Write(filepath.Join(s.e.cfg.Dir, servicesDir, s.id+".json"), rec); err != nil {
		s.e.log.Error("record service", "service", s.id, "err", err)
	}
}

// run is one run of the service for sp.Session, until it ends or is stopped.
func (s *service) run(sp ServiceSpec, stop <-chan stopReason, force <-chan struct{}) {
	defer s.e.wg.Done()
	e := s.e
	logID, lg, err := e.openLog()
	if err != nil {
		s.finish(sp, "", nil, true, PhaseFailed, "create the service's log: "+err.Error())
		return
	}
	defer e.closeLog(logID, lg)
	first := PhaseRunning
	if sp.Ready.Script != "" {
		first = PhaseStarting
	}
	s.set(func(st *ServiceStatus) {
		st.Session, st.Phase, st.FailureMessage, st.LogID = sp.Session, first, "", logID
	})
	cmd, err := e.command(sp.Start, lg, "RUNYARD_SERVICE_ID="+sp.ID)
	var g *proc.Group
	if err == nil {
		g, err = proc.Start(cmd)
	}
	if err != nil {
		lg.line("start command could not start: %v", err)
		s.finish(sp, logID, lg, true, PhaseFailed, "start command could not start: "+err.Error())
		return
	}
	s.save(false, g)
	exited := make(chan struct{})
	go func() { _ = g.WaitExited(); close(exited) }()

	var tick <-chan time.Time
	if first == PhaseStarting {
		t := time.NewTicker(e.cfg.ReadyInterval)
		defer t.Stop()
		tick = t.C
	}
	probing := false
	probed := make(chan bool, 1)
	probe := func() {
		probing = true
		go func() { probed <- e.probe(sp.Ready) }()
	}
	if tick != nil {
		probe()
	}
	for {
		select {
		case <-exited:
			how, code := proc.ExitDescription(g.Finish())
			lg.line("start command ended: %s", how)
			if code == 0 {
				s.finish(sp, logID, lg, true, PhaseStopped, "")
			} else {
				s.finish(sp, logID, lg, true, PhaseFailed, "start command failed: "+how)
			}
			return
		case <-tick:
			if !probing {
				probe()
			}
		case ok := <-probed:
			probing = false
			if ok && tick != nil {
				tick = nil
				lg.line("ready probe passed")
				s.set(func(st *ServiceStatus) { st.Phase = PhaseRunning })
			}
		case r := <-stop:
			s.stopRun(sp, r, g, exited, force, logID, lg)
			return
		case <-force:
			g.Kill()
			s.finish(sp, logID, lg, false, PhaseStopped, "the runner stopped")
			return
		}
	}
}

// probe runs the ready command once; it passes when it exits 0 in time.
func (e *Executor) probe(c Command) bool {
	cmd, err := e.command(c, nil)
	if err != nil {
		return false
	}
	g, err := proc.Start(cmd)
	if err != nil {
		return false
	}
	done := make(chan struct{})
	go func() { _ = g.WaitExited(); close(done) }()
	select {
	case <-done:
	case <-time.After(max(10*time.Second, e.cfg.ReadyInterval)):
		g.Kill()
		return false
	}
	_, code := proc.ExitDescription(g.Finish())
	return code == 0
}

// stopRun stops a run: with a stop command, that command, then SIGKILL for
// what is left; without one, SIGTERM to the session and SIGKILL after the
// grace period.
func (s *service) stopRun(sp ServiceSpec, r stopReason, g *proc.Group, exited <-chan struct{}, force <-chan struct{}, logID string, lg *runLog) {
	e := s.e
	s.set(func(st *ServiceStatus) { st.Phase = PhaseStopping })
	ended := r != stopShutdown
	grace := time.NewTimer(e.cfg.StopGrace)
	defer grace.Stop()
	if sp.Stop.Script != "" {
		lg.line("running the stop command")
		cmd, err := e.command(sp.Stop, lg, "RUNYARD_SERVICE_ID="+sp.ID)
		var sg *proc.Group
		if err == nil {
			sg, err = proc.Start(cmd)
		}
		if err != nil {
			g.Kill()
			s.finish(sp, logID, lg, ended, PhaseFailed, "stop command could not start: "+err.Error())
			return
		}
		s.save(false, g, sg)
		stopped := make(chan struct{})
		go func() { _ = sg.WaitExited(); close(stopped) }()
		select {
		case <-stopped:
			how, code := proc.ExitDescription(sg.Finish())
			g.Kill()
			lg.line("stop command ended: %s", how)
			if code != 0 {
				s.finish(sp, logID, lg, ended, PhaseFailed, "stop command failed: "+how)
				return
			}
			s.finish(sp, logID, lg, ended, PhaseStopped, "")
		case <-grace.C:
			sg.Kill()
			g.Kill()
			lg.line("stop command ran past the %s grace period: killed it and the service", e.cfg.StopGrace)
			s.finish(sp, logID, lg, ended, PhaseFailed, fmt.Sprintf("stop command did not finish within the %s grace period; the service was killed", e.cfg.StopGrace))
		case <-force:
			sg.Kill()
			g.Kill()
			s.finish(sp, logID, lg, ended, PhaseStopped, "")
		}
		return
	}
	g.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-grace.C:
		lg.line("the service did not stop within the %s grace period: killing it", e.cfg.StopGrace)
	case <-force:
	}
	g.Kill()
	s.finish(sp, logID, lg, ended, PhaseStopped, "")
}

// finish ends a run with its final phase; ended false (the runner stops)
// lets a later runner process start the session again.
func (s *service) finish(sp ServiceSpec, logID string, lg *runLog, ended bool, phase Phase, msg string) {
	if lg != nil && msg != "" {
		lg.line("%s", msg)
	}
	s.set(func(st *ServiceStatus) {
		st.Session, st.Phase, st.FailureMessage = sp.Session, phase, msg
		if logID != "" {
			st.LogID = logID
		}
	})
	s.save(ended)
	// Lock order: the executor, then the service (as EnsureServices).
	s.e.mu.Lock()
	defer s.e.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running = false
	if ended {
		s.ended, s.endedSession = true, sp.Session
	}
	if s.e.closed {
		return
	}
	if s.forgotten {
		delete(s.e.services, s.id)
		_ = os.Remove(filepath.Join(s.e.cfg.Dir, servicesDir, s.id+".json"))
		return
	}
	// The desired state may have changed while this run stopped: a new
	// session to run.
	if s.spec.Run && !(s.ended && s.endedSession == s.spec.Session) {
		s.launchLocked()
	}
}
