// Package envs is the runner's part of environments: it keeps each
// environment's workspace (a directory under the runner's state, with its
// git checkouts), converges each environment on its desired phase, hands the
// workspace's automations file to the control plane when an environment
// starts and when a reload is asked for (the control plane applies it only
// once per request), and runs the environment's services and task
// executions on the automations executor while the environment runs. It
// keeps the secrets an environment receives as files in its workspace
// (files.go). Every phase it reports is what happened on this host.
//
//	desired RUNNING: CREATING (first clone) / STARTING ─▶ StartAutomations ─▶ RUNNING
//	desired STOPPED: STOPPING (services and executions stop) ─▶ STOPPED
//	desired DELETED: DELETING (stop, remove the workspace) ─▶ DELETED
//	missing from the desired set (a forced delete): stop, remove, say nothing
//
// A clone that fails leaves the environment STOPPED with the failure in its
// status, and is not tried again until the spec changes (a stop and a
// start).
package envs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/automations"
	"github.com/runyard/runyard/internal/runner/mask"
	"github.com/runyard/runyard/internal/runner/queue"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// Config configures a Manager.
type Config struct {
	// StateDir is the runner's state directory: workspaces go to
	// StateDir/environments, the executor's records and logs to
	// StateDir/automations.
	StateDir string
	// StopGrace is how long a stopping service or step has before SIGKILL.
	StopGrace time.Duration
	// ReadyInterval is how often ready probes run; zero means 1s.
	ReadyInterval time.Duration
	// Docker says a Docker engine answers on this host.
	Docker bool
	Logger *slog.Logger
	// Start hands what the runner found in a started environment to the
	// control plane (RunnerControlService.StartAutomations).
	Start func(ctx context.Context, req *runnerv1.StartAutomationsRequest) (*runnerv1.StartAutomationsResponse, error)
	// BootID returns the host's boot id (proc.BootID); nil means none, so
	// that postMachineStart fires on an environment's first start only.
	BootID func() string
	// Open opens a secret value sealed to the runner's key.
	Open func(sealed []byte) ([]byte, error)
}

// Manager runs the environments of one runner.
type Manager struct {
	cfg  Config
	log  *slog.Logger
	exec *automations.Executor
	dir  string // StateDir/environments

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// syncMu makes syncs one at a time: each reads the state and hands it
	// to the executor, so a sync that read an older state can never
	// overwrite a newer one's work (a service started and stopped again).
	syncMu sync.Mutex

	mu   sync.Mutex
	envs map[string]*env
	// desired is the latest desired state's automations part.
	desired *runnerv1.DesiredState
	// services and executions are the latest executor statuses, by ID, so
	// an environment that stops can wait until nothing of it runs.
	services   map[string]*automations.ServiceStatus
	executions map[string]*automations.ExecutionStatus
	// changed is closed and replaced on every executor event.
	changed chan struct{}
	// keepSnapshots are the snapshots the latest desired state keeps;
	// keepKnown says a desired state arrived (snapshot.go).
	keepSnapshots map[string]bool
	keepKnown     bool
	// sparing holds the spare workspaces being extracted, by snapshot;
	// each channel is closed when its extraction ends (snapshot.go).
	sparing map[string]chan struct{}

	reports *queue.Queue[*runnerv1.ConnectRequest]
	version atomic.Uint64

	// xmu guards xr, the execution reports waiting to be folded
	// (reports.go); flushMu keeps their flushes in order.
	xmu     sync.Mutex
	xr      execReports
	flushMu sync.Mutex
}

// New returns a manager; call Open before anything else.
func New(cfg Config) (*Manager, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// Commands run in other directories and outlive this process: every
	// path handed to them ($RUNYARD_WORKSPACE, $RUNYARD_OUTPUT) is
	// absolute, whatever --state-dir was.
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("environments: %w", err)
	}
	cfg.StateDir = abs
	exec, err := automations.New(automations.Config{
		Dir: filepath.Join(cfg.StateDir, "automations"), StopGrace: cfg.StopGrace,
		ReadyInterval: cfg.ReadyInterval, Docker: cfg.Docker, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cfg.StateDir, "environments")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("environments: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		cfg: cfg, log: cfg.Logger, exec: exec, dir: dir, ctx: ctx, cancel: cancel,
		envs: map[string]*env{}, desired: &runnerv1.DesiredState{},
		services: map[string]*automations.ServiceStatus{}, executions: map[string]*automations.ExecutionStatus{},
		changed: make(chan struct{}), reports: queue.New[*runnerv1.ConnectRequest](),
		sparing: map[string]chan struct{}{},
	}
	// Status versions must grow across runner restarts too.
	m.version.Store(uint64(time.Now().UnixNano()))
	return m, nil
}

// Open recovers what a previous runner process left (the executor sweeps
// leftover processes; environments come back from their records) and starts
// forwarding the executor's events.
func (m *Manager) Open() error {
	if err := m.exec.Open(); err != nil {
		return err
	}
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return fmt.Errorf("environments: %w", err)
	}
	for _, ent := range entries {
		if !ent.IsDir() || validID(ent.Name()) != nil {
			continue
		}
		e := m.newEnv(ent.Name())
		if err := statefile.Read(e.recordPath(), &e.rec); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("skip an unreadable environment record", "environment", e.id, "err", err)
		}
		e.running = e.rec.Running && e.rec.Cloned
		m.envs[e.id] = e
	}
	m.wg.Add(1)
	go m.forward()
	return nil
}

// Reports delivers status reports for the control plane, in order.
func (m *Manager) Reports() <-chan *runnerv1.ConnectRequest { return m.reports.Out() }

// Snapshot returns the latest report on every environment, service and
// execution, for a control plane that just (re)connected.
func (m *Manager) Snapshot() []*runnerv1.ConnectRequest {
	var out []*runnerv1.ConnectRequest
	m.mu.Lock()
	for _, e := range m.envs {
		if e.status != nil {
			out = append(out, envReport(e.status))
		}
	}
	m.mu.Unlock()
	for _, ev := range m.exec.Statuses() {
		out = append(out, eventReport(ev))
	}
	return out
}

// ReadLog writes log id, a service run's or an execution's (whose ID it
// then is), to w; with follow it goes on until the run ends.
func (m *Manager) ReadLog(ctx context.Context, id string, follow bool, w io.Writer) error {
	err := m.exec.ReadExecutionLog(ctx, id, follow, w)
	if errors.Is(err, automations.ErrUnknownLog) {
		return m.exec.ReadLog(ctx, id, follow, w)
	}
	return err
}

// ErrUnknownLog is ReadLog's error for a log the runner does not have.
var ErrUnknownLog = automations.ErrUnknownLog

// Apply converges on the environments, services and executions of ds, the
// whole set: environments it lacks are stopped and removed.
func (m *Manager) Apply(ds *runnerv1.DesiredState) {
	m.mu.Lock()
	m.desired = &runnerv1.DesiredState{
		Environments: ds.GetEnvironments(), Services: ds.GetServices(),
		Executions: ds.GetExecutions(), Secrets: ds.GetSecrets(),
	}
	want := map[string]bool{}
	for _, es := range ds.GetEnvironments() {
		if validID(es.GetId()) != nil {
			m.log.Warn("skip an environment with an invalid ID", "environment", es.GetId())
			continue
		}
		want[es.GetId()] = true
		e := m.envs[es.GetId()]
		if e == nil {
			e = m.newEnv(es.GetId())
			m.envs[e.id] = e
		}
		// Only a new spec, a request to reload the automations file (or a
		// return to the set) needs the environment's loop; services and
		// executions follow from the sync below.
		changed := e.spec == nil || e.gone || e.spec.GetSpecVersion() != es.GetSpecVersion() ||
			e.spec.GetAutomationsFileRequest() != es.GetAutomationsFileRequest()
		e.spec, e.gone = es, false
		m.startLocked(e)
		if changed {
			e.kick()
		}
	}
	// What belongs to each environment, remembered after it left the set,
	// so that removing an environment waits for its services to stop.
	for _, s := range ds.GetServices() {
		if e := m.envs[s.GetEnvironmentId()]; e != nil {
			e.owned[s.GetId()] = true
		}
	}
	for _, x := range ds.GetExecutions() {
		if e := m.envs[x.GetEnvironmentId()]; e != nil {
			e.owned[x.GetId()] = true
		}
	}
	for _, e := range m.envs {
		if !want[e.id] && !e.gone {
			e.gone = true
			e.endSessionsLocked()
			m.startLocked(e)
			e.kick()
		}
	}
	m.mu.Unlock()
	m.applySnapshots(ds.GetSnapshots())
	m.sync()
}

// StopAll stops every service and execution and waits for them, for a
// runner that is being deleted.
func (m *Manager) StopAll(ctx context.Context) {
	// Stopped first, each as a stop on request does (grace, stop
	// commands); an empty desired set alone would kill services at once,
	// as a forced deletion does.
	m.exec.StopAll()
	m.waitIdle(ctx, "")
	m.Apply(&runnerv1.DesiredState{})
	m.waitIdle(ctx, "")
}

// Close stops the environments' loops and the executor: services run on
// under their holders for the next runner process, running executions
// stop (SIGTERM, then SIGKILL after the grace period).
func (m *Manager) Close(ctx context.Context) error {
	m.cancel()
	err := m.exec.Close(ctx)
	m.wg.Wait()
	m.reports.Close()
	return err
}

// forward turns executor events into reports and wakes environments that
// wait for their services to stop.
func (m *Manager) forward() {
	defer m.wg.Done()
	for ev := range m.exec.Events() {
		m.mu.Lock()
		var prev *automations.ExecutionStatus
		if ev.Service != nil {
			m.services[ev.Service.ID] = ev.Service
		}
		if ev.Execution != nil {
			prev = m.executions[ev.Execution.ID]
			m.executions[ev.Execution.ID] = ev.Execution
		}
		close(m.changed)
		m.changed = make(chan struct{})
		m.mu.Unlock()
		if ev.Execution != nil {
			m.reportExecution(prev, ev.Execution)
			continue
		}
		m.reports.Push(eventReport(ev))
	}
	m.flushExecutions()
}

// sync hands the executor the services and executions to run now: those of
// running environments run, every other one stops.
func (m *Manager) sync() {
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	m.mu.Lock()
	ds := m.desired
	running := map[string]*runningEnv{}
	type mount struct {
		e     *env
		files []*runnerv1.SecretFile
	}
	var mounts []mount
	for _, e := range m.envs {
		if e.running && !e.gone {
			running[e.id] = &runningEnv{dir: e.contentDir(), workspace: e.workspace(), vars: e.spec.GetEnv()}
		}
		// Secret files follow their secrets in every environment whose
		// content is in place, running or not; one being deleted loses
		// them with its workspace.
		if e.rec.Cloned && !e.gone && e.spec.GetDesiredPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED {
			mounts = append(mounts, mount{e, e.spec.GetFiles()})
		}
	}
	m.mu.Unlock()

	// Files go first, so that a command this sync starts finds them.
	for _, mt := range mounts {
		if mt.e.mountFiles(mt.files, ds.GetSecrets()) {
			mt.e.kick() // its loop reports the changed failure message
		}
	}

	// Every secret this runner was handed is masked in every log: a
	// command may print a value it got from a file or another command.
	masks := m.masks(ds)
	var svcs []automations.ServiceSpec
	for _, s := range ds.GetServices() {
		if validID(s.GetId()) != nil {
			continue
		}
		e := running[s.GetEnvironmentId()]
		sp := automations.ServiceSpec{ID: s.GetId(), Session: s.GetSession(), Run: s.GetRun() && e != nil}
		if e != nil {
			env, err := m.environ(ds, e, s.GetEnv())
			dir := e.dir
			sp.Start = m.command(s.GetStart(), env, dir, err)
			sp.Start.Mask = masks
			if s.GetReady() != "" {
				sp.Ready = automations.Command{Script: s.GetReady(), Env: env, Dir: dir, Docker: sp.Start.Docker, Err: err, Mask: masks}
			}
			if s.GetStop() != "" {
				sp.Stop = automations.Command{Script: s.GetStop(), Env: env, Dir: dir, Docker: sp.Start.Docker, Err: err, Mask: masks}
			}
		}
		svcs = append(svcs, sp)
	}
	if err := m.exec.EnsureServices(svcs); err != nil && !errors.Is(err, automations.ErrClosed) {
		m.log.Error("converge services", "err", err)
	}

	var xs []automations.ExecutionSpec
	for _, x := range ds.GetExecutions() {
		if validID(x.GetId()) != nil {
			continue
		}
		e := running[x.GetEnvironmentId()]
		// An execution of an environment that does not run waits for it;
		// one that runs stops with it.
		sp := automations.ExecutionSpec{ID: x.GetId(), Stop: x.GetStop() || e == nil}
		if e != nil {
			for _, g := range x.GetGroups() {
				var group []automations.StepSpec
				for _, st := range g.GetSteps() {
					step := automations.StepSpec{ID: st.GetId(), Label: st.GetLabel(), ServiceID: st.GetServiceId()}
					if t := st.GetTask(); t != nil {
						env, err := m.environ(ds, e, t.GetEnv())
						c := m.command(t.GetCommand(), env, e.dir, err)
						c.Mask = masks
						step.Task = &c
					}
					group = append(group, step)
				}
				sp.Groups = append(sp.Groups, group)
			}
		}
		xs = append(xs, sp)
	}
	if err := m.exec.EnsureExecutions(xs); err != nil && !errors.Is(err, automations.ErrClosed) {
		m.log.Error("converge task executions", "err", err)
	}
}

// masks opens every secret of ds for masking (mask.Values); one that does
// not open has no value here to leak.
func (m *Manager) masks(ds *runnerv1.DesiredState) []string {
	if m.cfg.Open == nil {
		return nil
	}
	var vals []string
	for _, sealed := range ds.GetSecrets() {
		if v, err := m.cfg.Open(sealed); err == nil {
			vals = append(vals, string(v))
		}
	}
	return mask.Values(vals...)
}

func (m *Manager) command(c *runnerv1.Command, env map[string]string, dir string, err error) automations.Command {
	out := automations.Command{Script: c.GetScript(), Env: env, Dir: dir, Err: err}
	if c.GetDockerImage() != "" {
		out.Docker = &automations.Docker{Image: c.GetDockerImage(), Environment: c.GetDockerEnvironment()}
	}
	return out
}

// runningEnv is what the commands of a running environment need of it.
type runningEnv struct {
	dir, workspace string
	vars           []*runnerv1.EnvVar
}

// environ resolves the variables of an environment and of one command (the
// command's win), opening secrets. A secret that cannot be read fails the
// command rather than running it without its value. RUNYARD_WORKSPACE
// names the workspace, the root under which the secret files are.
func (m *Manager) environ(ds *runnerv1.DesiredState, e *runningEnv, own []*runnerv1.EnvVar) (map[string]string, error) {
	out := map[string]string{}
	for _, list := range [][]*runnerv1.EnvVar{e.vars, own} {
		for _, v := range list {
			if v.GetSecretId() == "" {
				out[v.GetName()] = v.GetValue()
				continue
			}
			sealed, ok := ds.GetSecrets()[v.GetSecretId()]
			if !ok || m.cfg.Open == nil {
				return nil, fmt.Errorf("secret %s for variable %s is not available to this runner (deleted, or the runner has no key)", v.GetSecretId(), v.GetName())
			}
			val, err := m.cfg.Open(sealed)
			if err != nil {
				return nil, fmt.Errorf("secret %s for variable %s cannot be opened with this runner's key: %w", v.GetSecretId(), v.GetName(), err)
			}
			out[v.GetName()] = string(val)
		}
	}
	// Set last: an automation's own env cannot move it.
	out["RUNYARD_WORKSPACE"] = e.workspace
	return out, nil
}

// waitIdle waits until no service or execution of environment envID (of
// any environment when envID is empty) runs, per the executor's latest
// statuses, or ctx ends.
func (m *Manager) waitIdle(ctx context.Context, envID string) {
	for {
		m.mu.Lock()
		ch := m.changed
		var owned map[string]bool
		if e := m.envs[envID]; e != nil {
			owned = e.owned
		}
		busy := false
		for id, st := range m.services {
			if active(st.Phase) && (envID == "" || owned[id]) {
				busy = true
			}
		}
		for id, st := range m.executions {
			if !st.Phase.Final() && (envID == "" || owned[id]) {
				busy = true
			}
		}
		m.mu.Unlock()
		if !busy {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func active(p automations.Phase) bool {
	return p == automations.PhaseStarting || p == automations.PhaseRunning || p == automations.PhaseStopping
}

// report sends an environment's status, with a new version.
func (m *Manager) report(e *env, phase gitpodv1.EnvironmentPhase, failure string) {
	m.mu.Lock()
	st := &runnerv1.EnvironmentStatus{
		Id: e.id, StatusVersion: m.version.Add(1), Phase: phase,
		SpecVersion: e.spec.GetSpecVersion(), FailureMessage: e.failureLocked(phase, failure),
		AutomationsFilePath: e.automationsPath, AutomationsFailureMessage: e.automationsFailure,
	}
	if e.rec.Cloned {
		st.ContentLocation = e.contentDir()
		st.FromSnapshot = e.rec.FromSnapshot
	}
	st.Snapshot = e.snapshotReportLocked()
	e.status = st
	m.mu.Unlock()
	m.reports.Push(envReport(st))
}

// failure is the failure message of a report of phase: base (a failed
// clone) and the refused secret files, except while the environment is
// being deleted (its files go with it).
func (e *env) failure(phase gitpodv1.EnvironmentPhase, base string) string {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	return e.failureLocked(phase, base)
}

// failureLocked is failure with Manager.mu held.
func (e *env) failureLocked(phase gitpodv1.EnvironmentPhase, base string) string {
	switch {
	case e.filesFailure == "",
		phase == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETING,
		phase == gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED:
		return base
	case base == "":
		return e.filesFailure
	}
	return base + "; " + e.filesFailure
}

func envReport(st *runnerv1.EnvironmentStatus) *runnerv1.ConnectRequest {
	return &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_EnvironmentStatus{EnvironmentStatus: st}}
}

// eventReport is the protocol message for an executor event.
func eventReport(ev automations.Event) *runnerv1.ConnectRequest {
	if s := ev.Service; s != nil {
		return &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ServiceStatus{ServiceStatus: &runnerv1.ServiceStatus{
			Id: s.ID, StatusVersion: s.Version, Phase: servicePhase(s.Phase), Session: s.Session,
			FailureMessage: s.FailureMessage, LogId: s.LogID,
		}}}
	}
	x := ev.Execution
	return &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_ExecutionStatus{ExecutionStatus: executionStatus(x, x.Steps, false)}}
}

func servicePhase(p automations.Phase) gitpodv1.ServicePhase {
	switch p {
	case automations.PhaseStarting:
		return gitpodv1.ServicePhase_SERVICE_PHASE_STARTING
	case automations.PhaseRunning:
		return gitpodv1.ServicePhase_SERVICE_PHASE_RUNNING
	case automations.PhaseStopping:
		return gitpodv1.ServicePhase_SERVICE_PHASE_STOPPING
	case automations.PhaseStopped:
		return gitpodv1.ServicePhase_SERVICE_PHASE_STOPPED
	case automations.PhaseFailed:
		return gitpodv1.ServicePhase_SERVICE_PHASE_FAILED
	}
	return gitpodv1.ServicePhase_SERVICE_PHASE_UNSPECIFIED
}

// executionPhase maps an execution's or step's phase, which share names.
func executionPhase(p string) gitpodv1.TaskExecutionPhase {
	switch p {
	case string(automations.ExecutionRunning):
		return gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_RUNNING
	case string(automations.ExecutionSucceeded):
		return gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_SUCCEEDED
	case string(automations.ExecutionFailed):
		return gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_FAILED
	case string(automations.ExecutionStopped):
		return gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_STOPPED
	}
	return gitpodv1.TaskExecutionPhase_TASK_EXECUTION_PHASE_PENDING
}

// Executions returns the IDs of the task executions this manager has seen
// (started, adopted or finished) and how many of them still run: a runner
// that drains for an update starts no other and waits for these.
func (m *Manager) Executions() (known map[string]bool, running int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	known = make(map[string]bool, len(m.executions))
	for id, x := range m.executions {
		known[id] = true
		if !x.Phase.Final() {
			running++
		}
	}
	return known, running
}
