// Package automations is the runner's executor of environment automations:
// services (start, ready probe, stop, each command leading a process session
// of its own) and task executions (groups of steps run one after another,
// the steps of a group at once). Like the pod manager it is
// level-triggered: EnsureServices and EnsureExecutions take the whole desired
// set each time, start what is not running yet (once per service session and
// per execution ID, also across runner restarts) and stop what should not
// run. Every change of state goes out on Events; every run and step writes a
// capped log file that ReadLog serves.
package automations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/queue"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Config configures an Executor.
type Config struct {
	// Dir holds the executor's records and logs (STATE/automations).
	Dir string
	// StopGrace is how long a stopping command may take before it is
	// killed: 2 minutes when zero.
	StopGrace time.Duration
	// ReadyInterval is how often a ready probe runs: 1s when zero.
	ReadyInterval time.Duration
	// LogCap bounds each run's log: 16 MiB when zero.
	LogCap int64
	// LogRetention is how long logs of ended runs are kept: 7 days when
	// zero.
	LogRetention time.Duration
	// PruneInterval is how often logs past their retention are looked
	// for while the executor runs (and once when it opens): hourly when
	// zero.
	PruneInterval time.Duration
	// Docker says a Docker engine answers on this runner; without one a
	// runsOn.docker command fails with ErrNoDocker.
	Docker bool
	Logger *slog.Logger
}

// Executor runs the automations of a runner's environments.
type Executor struct {
	cfg    Config
	log    *slog.Logger
	bootID string

	mu         sync.Mutex
	services   map[string]*service
	executions map[string]*execution
	logs       map[string]*runLog // the logs being written, by ID
	closed     bool
	// svcChanged is closed and replaced whenever a service's status
	// changes, for steps that await a service.
	svcChanged chan struct{}
	// execChanged is the same for executions, for log readers that follow
	// an execution's steps as they start.
	execChanged chan struct{}
	wg          sync.WaitGroup
	// quit ends the background work that is not a run (log pruning).
	quit chan struct{}
	// detach is closed by Close: task steps let go of their holders and
	// run on for the next runner process.
	detach chan struct{}

	events  *queue.Queue[Event]
	version atomic.Uint64
}

// Event is one status change: exactly one of the fields is set.
type Event struct {
	Service   *ServiceStatus
	Execution *ExecutionStatus
}

// New returns an executor over cfg.Dir; call Open before anything else.
func New(cfg Config) (*Executor, error) {
	if cfg.Dir == "" {
		return nil, errors.New("automations: Dir is required")
	}
	// $RUNYARD_OUTPUT and the holders' log paths are used from other
	// working directories: absolute.
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("automations: %w", err)
	}
	cfg.Dir = abs
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 2 * time.Minute
	}
	if cfg.ReadyInterval <= 0 {
		cfg.ReadyInterval = time.Second
	}
	if cfg.LogCap <= 0 {
		cfg.LogCap = 16 << 20
	}
	if cfg.LogRetention <= 0 {
		cfg.LogRetention = 7 * 24 * time.Hour
	}
	if cfg.PruneInterval <= 0 {
		cfg.PruneInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, servicesDir), filepath.Join(cfg.Dir, executionsDir), filepath.Join(cfg.Dir, logsDir), filepath.Join(cfg.Dir, outputsDir), filepath.Join(cfg.Dir, holdersDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("automations: %w", err)
		}
	}
	e := &Executor{
		cfg: cfg, log: cfg.Logger, bootID: proc.BootID(),
		services: map[string]*service{}, executions: map[string]*execution{}, logs: map[string]*runLog{},
		svcChanged: make(chan struct{}), execChanged: make(chan struct{}), events: queue.New[Event](), quit: make(chan struct{}), detach: make(chan struct{}),
	}
	// Versions order status reports for the control plane
	// (statusVersion): they must grow across runner restarts too.
	e.version.Store(uint64(time.Now().UnixNano()))
	return e, nil
}

const (
	servicesDir   = "services"
	executionsDir = "executions"
	logsDir       = "logs"
	outputsDir    = "outputs"
	// holdersDir holds the directory of each service run's process
	// holder, named after the run's log.
	holdersDir = "holders"
)

// Events delivers status changes in order. It is closed by Close.
func (e *Executor) Events() <-chan Event { return e.events.Out() }

func (e *Executor) emit(ev Event) { e.events.Push(ev) }

func (e *Executor) nextVersion() uint64 { return e.version.Add(1) }

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validID(what, id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%s ID %q: must be 1 to 128 letters, digits, '.', '_' or '-'", what, id)
	}
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Open recovers what a previous runner process left: processes of its runs
// are killed, services that were running come back when EnsureServices
// still wants them, and executions that were running are reported failed.
// Logs past their retention are removed.
func (e *Executor) Open() error {
	entries, err := os.ReadDir(filepath.Join(e.cfg.Dir, servicesDir))
	if err != nil {
		return fmt.Errorf("automations: %w", err)
	}
	for _, ent := range entries {
		var rec serviceRecord
		if err := statefile.Read(filepath.Join(e.cfg.Dir, servicesDir, ent.Name()), &rec); err != nil {
			e.log.Warn("skip an unreadable service record", "file", ent.Name(), "err", err)
			continue
		}
		if validID("service", rec.Status.ID) != nil {
			continue
		}
		s := &service{e: e, id: rec.Status.ID, st: rec.Status}
		switch {
		case !rec.Ended && rec.Holder != "":
			// Its run goes on under its holder (or ended there meanwhile):
			// the next EnsureServices adopts it, and its status stays what
			// it was.
			s.adopt, s.holder = rec.Holder, rec.Holder
			e.emit(Event{Service: s.status()})
		case !rec.Ended:
			for _, g := range rec.Groups {
				proc.Sweep(g, e.bootID)
			}
			// Interrupted, not ended: the session runs again when still
			// wanted; until then it is honestly stopped.
			s.st.Phase, s.st.FailureMessage = PhaseStopped, "the runner restarted while the service ran"
			s.st.Version = e.nextVersion()
			e.emit(Event{Service: s.status()})
		default:
			s.ended, s.endedSession = true, rec.Status.Session
		}
		e.services[s.id] = s
	}
	entries, err = os.ReadDir(filepath.Join(e.cfg.Dir, executionsDir))
	if err != nil {
		return fmt.Errorf("automations: %w", err)
	}
	for _, ent := range entries {
		var rec executionRecord
		if err := statefile.Read(filepath.Join(e.cfg.Dir, executionsDir, ent.Name()), &rec); err != nil {
			e.log.Warn("skip an unreadable execution record", "file", ent.Name(), "err", err)
			continue
		}
		x := e.newExecution(rec.Status.ID)
		x.st, x.done = rec.Status, true
		switch {
		case !rec.Status.Phase.Final() && rec.HeldSteps:
			// Its steps run on under their holders (or ended there): the
			// next EnsureExecutions resumes the plan.
			x.done, x.resume = false, true
			for id, dir := range rec.Held {
				x.held[id] = dir
			}
			e.emit(Event{Execution: x.status()})
		case !rec.Status.Phase.Final():
			for _, g := range rec.Groups {
				proc.Sweep(g, e.bootID)
			}
			now := time.Now()
			x.st.Phase, x.st.FailureMessage, x.st.CompletedAt = ExecutionFailed, "the runner restarted during the execution", now
			for i := range x.st.Steps {
				if !x.st.Steps[i].Phase.Final() {
					x.st.Steps[i].Phase, x.st.Steps[i].FailureMessage, x.st.Steps[i].FinishedAt = StepFailed, "the runner restarted during the step", now
				}
			}
			x.st.Version = e.nextVersion()
			if err := statefile.Write(filepath.Join(e.cfg.Dir, executionsDir, x.id+".json"), executionRecord{Status: x.st}); err != nil {
				return err
			}
			e.emit(Event{Execution: x.status()})
		}
		e.executions[x.id] = x
	}
	e.pruneLogs()
	// A runner may run for months: retention is enforced while it runs,
	// not only when it starts.
	go func() {
		t := time.NewTicker(e.cfg.PruneInterval)
		defer t.Stop()
		for {
			select {
			case <-e.quit:
				return
			case <-t.C:
				e.pruneLogs()
			}
		}
	}()
	return nil
}

// pruneLogs removes the logs of ended runs last written before the
// retention. A log still being written stays, however quiet its run.
func (e *Executor) pruneLogs() {
	dir := filepath.Join(e.cfg.Dir, logsDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		e.log.Warn("read the logs directory to prune it", "err", err)
		return
	}
	cutoff := time.Now().Add(-e.cfg.LogRetention)
	for _, ent := range entries {
		id, ok := strings.CutSuffix(ent.Name(), ".log")
		e.mu.Lock()
		live := ok && e.logs[id] != nil
		e.mu.Unlock()
		if live {
			continue
		}
		if info, err := ent.Info(); err == nil && info.ModTime().Before(cutoff) {
			if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				e.log.Warn("remove a log past its retention", "file", ent.Name(), "err", err)
			}
		}
	}
}

// ErrUnknownLog is ReadLog's error for a log that does not exist (never
// did, or its retention passed).
var ErrUnknownLog = errors.New("unknown log")

// ReadLog writes the log id to w; with follow it goes on while the run
// writes it, until the run ends or ctx ends.
func (e *Executor) ReadLog(ctx context.Context, id string, follow bool, w io.Writer) error {
	if validID("log", id) != nil {
		return ErrUnknownLog
	}
	e.mu.Lock()
	live := e.logs[id]
	e.mu.Unlock()
	err := copyLog(ctx, filepath.Join(e.cfg.Dir, logsDir, id+".log"), live, follow, w)
	if errors.Is(err, fs.ErrNotExist) {
		return ErrUnknownLog
	}
	return err
}

// openLog creates the log of a new run.
func (e *Executor) openLog() (string, *runLog, error) {
	id := newID()
	l, err := createLog(filepath.Join(e.cfg.Dir, logsDir, id+".log"), e.cfg.LogCap)
	if err != nil {
		return "", nil, err
	}
	e.mu.Lock()
	e.logs[id] = l
	e.mu.Unlock()
	return id, l, nil
}

func (e *Executor) closeLog(id string, l *runLog) {
	l.close()
	e.mu.Lock()
	delete(e.logs, id)
	e.mu.Unlock()
}

// Close lets go of every running service and task step, which run on under
// their holders for the next runner process to adopt (it carries on with
// the executions' plans). Events are closed once everything let go.
func (e *Executor) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.quit)
	svcs := make([]*service, 0, len(e.services))
	for _, s := range e.services {
		svcs = append(svcs, s)
	}
	xs := make([]*execution, 0, len(e.executions))
	for _, x := range e.executions {
		xs = append(xs, x)
	}
	e.mu.Unlock()
	for _, s := range svcs {
		s.requestStop(stopShutdown)
	}
	close(e.detach)
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		for _, s := range svcs {
			s.kill()
		}
		for _, x := range xs {
			x.kill()
		}
		<-done
	}
	e.events.Close()
	return nil
}

// StopAll asks every running service and execution to stop, as a stop on
// request does (the runner is being deleted); their events follow.
func (e *Executor) StopAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for _, s := range e.services {
		s.mu.Lock()
		if s.adopt != "" && !s.running {
			s.launchLocked()
		}
		if s.running {
			s.requestStopLocked(stopRequested)
		}
		s.mu.Unlock()
	}
	for _, x := range e.executions {
		x.requestStop(stopMsg{reason: "the runner is being deleted"})
	}
}

// executionsChanged wakes whoever waits for an execution's status to
// change.
func (e *Executor) executionsChanged() {
	e.mu.Lock()
	close(e.execChanged)
	e.execChanged = make(chan struct{})
	e.mu.Unlock()
}
