package automations

// The life of one service run (service.run), from the session the control
// plane asks for to its end. The start command runs under a process holder
// (internal/runner/holder), so the run outlives the runner process:
//
//	EnsureServices: Run, a session not run yet
//	        │ record names the holder, then the holder starts `start`
//	        ▼
//	   ┌─ starting ── ready probe exits 0 ──▶ running ─┐   (no ready probe: running at once)
//	   │      │                                        │
//	   │      └──────── start exits ───────────────────┼──▶ stopped (exit 0) | failed
//	   │                                               │
//	   │   Run=false, another session, forced removal  │
//	   │      ▼                                        ▼
//	   │   stopping: `stop` (then SIGKILL), or SIGTERM and SIGKILL after the
//	   │      │      grace period; a forced removal kills at once
//	   │      ▼
//	   │   stopped | failed (stop failed or ran past the grace period)
//	   │
//	   │   Close (the runner process stops): the run lets go of its holder
//	   └── Open + EnsureServices of the next runner process: adopted in the
//	       phase it had (same process, same log); a holder that died took
//	       the command with it ─▶ failed

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/runyard/runyard/internal/runner/holder"
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
	// Output is what the run wrote to $RUNYARD_OUTPUT (key=value lines),
	// read when it became ready and when it ended.
	Output map[string]string `json:"output,omitempty"`
	// Version increases with every change, across runner restarts too.
	Version uint64 `json:"version"`
}

// serviceRecord is a service's file: enough for a later runner process to
// kill what a run left and to know whether its session ended.
type serviceRecord struct {
	Status ServiceStatus `json:"status"`
	// Ended says the session's run ended (by itself or by a stop); a run
	// merely interrupted by the runner's end is started again.
	Ended bool `json:"ended"`
	// Holder names the run's process holder (HOLDERS/<log id>) while it
	// may run: written before the holder starts, so that a runner process
	// that dies at any moment leaves its successor something to adopt.
	Holder string `json:"holder,omitempty"`
	// Groups are the sessions of runs of runner versions without holders.
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
	// adopt names the holder of a run a previous runner process started;
	// the next launch takes it over instead of starting the service.
	adopt string
	// holder is the current run's holder directory, kept in the record.
	holder string

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
	if s.adopt != "" && !s.running {
		// The run a previous runner process left goes on; it stops when
		// it is not wanted any more, or when another session is wanted.
		s.launchLocked()
		if !sp.Run || sp.Session != s.st.Session {
			s.requestStopLocked(stopRequested)
		}
		return
	}
	switch {
	case sp.Run && !s.running && !(s.ended && s.endedSession == sp.Session):
		s.launchLocked()
	case !sp.Run && s.running:
		s.requestStopLocked(stopRequested)
	}
}

// forget stops a service missing from the desired set; it reports whether
// it can be dropped now. e.mu is held.
//
// A service that leaves the set while it runs was deleted with force (a
// plain delete stops it first): it is killed at once, without its grace
// period.
func (s *service) forget() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgotten = true
	if s.adopt != "" && !s.running {
		s.launchLocked()
	}
	if s.running {
		s.requestStopLocked(stopRequested)
		s.killLocked()
		return false
	}
	return true
}

func (s *service) launchLocked() {
	s.running = true
	s.stop = make(chan stopReason, 1)
	s.force = make(chan struct{})
	s.e.wg.Add(1)
	adopt := s.adopt
	s.adopt = ""
	go s.run(s.spec, s.stop, s.force, adopt)
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
	s.killLocked()
}

func (s *service) killLocked() {
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
	rec := serviceRecord{Status: s.st, Ended: ended, Holder: s.holder}
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

// run is one run of the service for sp.Session, until it ends or is
// stopped, or until the executor closes: then the run goes on under its
// holder for the next runner process, which adopts it (adopt names its
// holder directory) and carries on where this one left.
func (s *service) run(sp ServiceSpec, stop <-chan stopReason, force <-chan struct{}, adopt string) {
	defer s.e.wg.Done()
	e := s.e
	var (
		logID string
		lg    *runLog
		h     *holder.Handle
		err   error
	)
	first := PhaseRunning
	if adopt != "" {
		s.mu.Lock()
		sp.Session, first, logID = s.st.Session, s.st.Phase, filepath.Base(adopt)
		s.mu.Unlock()
		fresh := holder.Unstarted(adopt)
		if lg, err = e.reopenLog(logID); err == nil {
			if fresh {
				// The previous runner process recorded the run and died
				// before it handed the start command to a holder: it never
				// ran, and starts now.
				e.log.Info("starting a service run a previous runner process recorded but did not start", "service", s.id)
				h, err = s.startHeld(sp, logID, lg)
			} else {
				h, err = holder.Adopt(adopt, holder.Hooks{Grew: lg.grew})
			}
		}
		if err != nil {
			s.finish(sp, logID, lg, true, PhaseFailed, "the runner could not take over the service's process after it restarted: "+err.Error())
			return
		}
		if !fresh {
			e.log.Info("adopted a service run a previous runner process started", "service", s.id, "pid", h.Record().Command.Session)
		}
	} else {
		if logID, lg, err = e.openLog(); err != nil {
			s.finish(sp, "", nil, true, PhaseFailed, "create the service's log: "+err.Error())
			return
		}
		if sp.Ready.Script != "" {
			first = PhaseStarting
		}
		s.set(func(st *ServiceStatus) {
			st.Session, st.Phase, st.FailureMessage, st.LogID, st.Output = sp.Session, first, "", logID, nil
		})
		h, err = s.startHeld(sp, logID, lg)
		if err != nil {
			lg.line("start command could not start: %v", err)
			s.finish(sp, logID, lg, true, PhaseFailed, "start command could not start: "+err.Error())
			return
		}
	}
	defer e.closeLog(logID, lg)

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
	if first == PhaseStopping {
		// The previous runner process was stopping it.
		s.stopRun(sp, stopRequested, h, force, logID, lg)
		return
	}
	for {
		select {
		case <-h.Done():
			x := h.Exit()
			lg.line("start command ended: %s", x.How)
			switch {
			case x.How == holder.ErrDied.Error():
				s.finish(sp, logID, lg, true, PhaseFailed, x.How)
			case x.Code == 0 && x.Signal == 0:
				s.finish(sp, logID, lg, true, PhaseStopped, "")
			default:
				s.finish(sp, logID, lg, true, PhaseFailed, "start command failed: "+x.How)
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
				out := e.serviceOutput(logID, lg)
				s.set(func(st *ServiceStatus) { st.Phase, st.Output = PhaseRunning, out })
			}
		case r := <-stop:
			if r == stopShutdown {
				// The runner process stops, the service does not: its holder
				// keeps it for the next runner process.
				h.Detach()
				return
			}
			s.stopRun(sp, r, h, force, logID, lg)
			return
		case <-force:
			killHeld(h)
			s.finish(sp, logID, lg, true, PhaseStopped, "")
			return
		}
	}
}

// startHeld starts the service's start command under a holder, after
// recording where the holder lives.
func (s *service) startHeld(sp ServiceSpec, logID string, lg *runLog) (*holder.Handle, error) {
	e := s.e
	spec, err := e.holderSpec(sp.Start, lg.path, "RUNYARD_SERVICE_ID="+sp.ID, "RUNYARD_OUTPUT="+e.outputPath(logID))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.holder = e.holderDir(logID)
	s.mu.Unlock()
	s.save(false)
	h, err := holder.Start(s.holder, spec, holder.Hooks{Grew: lg.grew})
	if err != nil {
		s.mu.Lock()
		s.holder = ""
		s.mu.Unlock()
		_ = holder.Remove(e.holderDir(logID))
		return nil, err
	}
	return h, nil
}

// killHeld kills the held command's whole session and waits for its end.
func killHeld(h *holder.Handle) {
	_ = h.Signal(syscall.SIGKILL)
	<-h.Done()
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
func (s *service) stopRun(sp ServiceSpec, r stopReason, h *holder.Handle, force <-chan struct{}, logID string, lg *runLog) {
	e := s.e
	s.set(func(st *ServiceStatus) { st.Phase = PhaseStopping })
	s.save(false)
	ended := r != stopShutdown
	grace := time.NewTimer(e.cfg.StopGrace)
	defer grace.Stop()
	if sp.Stop.Script != "" {
		lg.line("running the stop command")
		cmd, err := e.command(sp.Stop, e.masked(lg, sp.Stop), "RUNYARD_SERVICE_ID="+sp.ID)
		var sg *proc.Group
		if err == nil {
			sg, err = proc.Start(cmd)
		}
		if err != nil {
			killHeld(h)
			s.finish(sp, logID, lg, ended, PhaseFailed, "stop command could not start: "+err.Error())
			return
		}
		stopped := make(chan struct{})
		go func() { _ = sg.WaitExited(); close(stopped) }()
		select {
		case <-stopped:
			how, code := proc.ExitDescription(sg.Finish())
			killHeld(h)
			lg.line("stop command ended: %s", how)
			if code != 0 {
				s.finish(sp, logID, lg, ended, PhaseFailed, "stop command failed: "+how)
				return
			}
			s.finish(sp, logID, lg, ended, PhaseStopped, "")
		case <-grace.C:
			sg.Kill()
			killHeld(h)
			lg.line("stop command ran past the %s grace period: killed it and the service", e.cfg.StopGrace)
			s.finish(sp, logID, lg, ended, PhaseFailed, fmt.Sprintf("stop command did not finish within the %s grace period; the service was killed", e.cfg.StopGrace))
		case <-force:
			sg.Kill()
			killHeld(h)
			s.finish(sp, logID, lg, ended, PhaseStopped, "")
		}
		return
	}
	_ = h.Signal(syscall.SIGTERM)
	select {
	case <-h.Done():
	case <-grace.C:
		lg.line("the service did not stop within the %s grace period: killing it", e.cfg.StopGrace)
	case <-force:
	}
	killHeld(h)
	s.finish(sp, logID, lg, ended, PhaseStopped, "")
}

// finish ends a run with its final phase; ended false (the runner stops)
// lets a later runner process start the session again.
func (s *service) finish(sp ServiceSpec, logID string, lg *runLog, ended bool, phase Phase, msg string) {
	if lg != nil && msg != "" {
		lg.line("%s", msg)
	}
	var out map[string]string
	if logID != "" {
		out = s.e.serviceOutput(logID, lg)
	}
	s.set(func(st *ServiceStatus) {
		st.Session, st.Phase, st.FailureMessage = sp.Session, phase, msg
		if logID != "" {
			st.LogID = logID
		}
		if out != nil {
			st.Output = out
		}
	})
	s.mu.Lock()
	held := s.holder
	s.holder = ""
	s.mu.Unlock()
	s.save(ended)
	if held != "" {
		if err := holder.Remove(held); err != nil {
			s.e.log.Warn("remove a service's holder directory", "service", s.id, "err", err)
		}
	}
	if logID != "" {
		_ = os.Remove(s.e.outputPath(logID))
	}
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
