package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/prebuilds"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
)

// This file carries environments and their automations over the runner
// protocol: their specs into a runner's desired state, the runner's reports
// back into the domain services, the automations file a runner found when an
// environment started, and the logs of service runs and execution steps
// read on demand from the runner (which has no inbound port).

// Secrets is what the fleet needs of the secrets service
// (secrets.Service).
type Secrets interface {
	// EnvVarsFor returns the secrets of organization orgID that an
	// environment created by owner gets as environment variables.
	EnvVarsFor(ctx context.Context, orgID string, owner identity.Subject) ([]secrets.EnvVar, error)
	// FilesFor returns the secrets of organization orgID that an
	// environment created by owner gets as files.
	FilesFor(ctx context.Context, orgID string, owner identity.Subject) ([]secrets.File, error)
	// SealedForRunner returns the values of the secrets ids of orgID, each
	// sealed to the runner's X25519 public key; a secret that does not
	// exist is left out.
	SealedForRunner(ctx context.Context, orgID string, runnerPublicKey []byte, ids []string) (map[string][]byte, error)
}

// Automations is what SetAutomations connects.
type Automations struct {
	Environments *environments.Service
	Automations  *automations.Manager
	// Secrets, when set, delivers secrets; without it a secret reference
	// reaches the runner without a value and the runner fails what needs
	// it.
	Secrets Secrets
	// LogURL returns the control-plane URL of a log on a runner.
	LogURL func(runnerID, logID string) string
	// Prebuilds, when set, records prebuild environments' reports and
	// names the snapshots each runner keeps.
	Prebuilds *prebuilds.Service
}

// SetAutomations makes the fleet deliver environments and their automations
// to runners.
func (f *Fleet) SetAutomations(a Automations) { f.autos = &a }

// addEnvironments adds the runner's environments, services, unfinished
// executions and the secrets they need to its desired state. ctx carries the
// runner.
func (f *Fleet) addEnvironments(ctx context.Context, r *runners.Runner, d *runnerv1.DesiredState) error {
	envs, err := f.autos.Environments.Desired(ctx)
	if err != nil {
		return err
	}
	// Services and executions are those of the runner's environments (the
	// store reads them through environments.runner_id): a runner with none
	// has none, and its desired state, pushed after each pod placed on it,
	// skips their two queries (bench/pods: 13% of the control plane's CPU
	// went to this function). An environment placed between the two reads
	// comes with its automations in the push its placement makes.
	set := &automations.Desired{}
	if len(envs) > 0 {
		if set, err = f.autos.Automations.Desired(ctx); err != nil {
			return err
		}
	}
	secretIDs := map[string]bool{}
	envVars := func(vs []automations.EnvVar) []*runnerv1.EnvVar {
		out := make([]*runnerv1.EnvVar, 0, len(vs))
		for _, v := range vs {
			out = append(out, &runnerv1.EnvVar{Name: v.Name, Value: v.Value, SecretId: v.SecretID})
			if v.SecretID != "" {
				secretIDs[v.SecretID] = true
			}
		}
		return out
	}
	type secretMounts struct {
		vars  []secrets.EnvVar
		files []secrets.File
	}
	mounts := map[identity.Subject]secretMounts{}
	for _, e := range envs {
		es := &runnerv1.EnvironmentSpec{
			Id: e.ID, SpecVersion: e.Spec.SpecVersion,
			DesiredPhase:           gitpodv1.EnvironmentPhase(gitpodv1.EnvironmentPhase_value[string(e.Spec.DesiredPhase)]),
			GitUsername:            e.Spec.Content.GitUsername,
			GitEmail:               e.Spec.Content.GitEmail,
			AutomationsFilePath:    e.Spec.AutomationsFile.Path,
			AutomationsFileRequest: e.Spec.AutomationsFile.FileRequested,
			PrebuildId:             e.Spec.PrebuildID,
		}
		for _, in := range e.Spec.Content.Initializers {
			if in.Git == nil {
				continue
			}
			es.Git = append(es.Git, &runnerv1.GitInitializer{
				RemoteUri: in.Git.RemoteURI, UpstreamRemoteUri: in.Git.UpstreamRemoteURI,
				TargetMode:       gitpodv1.GitInitializer_CloneTargetMode(gitpodv1.GitInitializer_CloneTargetMode_value[string(in.Git.TargetMode)]),
				CloneTarget:      in.Git.CloneTarget,
				CheckoutLocation: in.Git.CheckoutLocation,
			})
		}
		if f.autos.Secrets != nil && !e.Deleting() {
			m, ok := mounts[e.Creator]
			if !ok {
				// Environments of one creator get the same secrets: look
				// them up once per desired state.
				if m.vars, err = f.autos.Secrets.EnvVarsFor(ctx, r.OrgID, e.Creator); err != nil {
					return fmt.Errorf("secrets of environment %q: %w", e.ID, err)
				}
				if m.files, err = f.autos.Secrets.FilesFor(ctx, r.OrgID, e.Creator); err != nil {
					return fmt.Errorf("secret files of environment %q: %w", e.ID, err)
				}
				mounts[e.Creator] = m
			}
			for _, v := range m.vars {
				es.Env = append(es.Env, &runnerv1.EnvVar{Name: v.Name, SecretId: v.SecretID})
				secretIDs[v.SecretID] = true
			}
			for _, file := range m.files {
				es.Files = append(es.Files, &runnerv1.SecretFile{Path: file.Path, SecretId: file.SecretID})
				secretIDs[file.SecretID] = true
			}
		}
		d.Environments = append(d.Environments, es)
	}
	for _, svc := range set.Services {
		ss := &runnerv1.ServiceSpec{
			Id: svc.ID, EnvironmentId: svc.EnvironmentID, Session: svc.Spec.Session,
			Run:   svc.Spec.DesiredPhase == automations.ServicePhaseRunning,
			Start: command(svc.Spec.Commands.Start, svc.Spec.RunsOn),
			Ready: svc.Spec.Commands.Ready, Stop: svc.Spec.Commands.Stop,
			Env: envVars(svc.Spec.Env),
		}
		d.Services = append(d.Services, ss)
	}
	for _, x := range set.Executions {
		xs := &runnerv1.ExecutionSpec{
			Id: x.ID, EnvironmentId: x.EnvironmentID,
			Stop: x.Spec.DesiredPhase == automations.ExecutionPhaseStopped,
		}
		for _, g := range x.Spec.Plan {
			sg := &runnerv1.StepGroup{}
			for _, st := range g.Steps {
				step := &runnerv1.StepSpec{Id: st.ID, Label: st.Label}
				switch {
				case st.Task != nil:
					step.Step = &runnerv1.StepSpec_Task{Task: &runnerv1.TaskStep{
						Command: command(st.Task.Spec.Command, st.Task.Spec.RunsOn),
						Env:     envVars(st.Task.Spec.Env),
					}}
				default:
					step.Step = &runnerv1.StepSpec_ServiceId{ServiceId: st.ServiceID}
				}
				sg.Steps = append(sg.Steps, step)
			}
			xs.Groups = append(xs.Groups, sg)
		}
		d.Executions = append(d.Executions, xs)
	}
	if f.autos.Prebuilds != nil {
		ids, err := f.autos.Prebuilds.KeptSnapshots(ctx, r.ID)
		if err != nil {
			return err
		}
		for _, id := range ids {
			d.Snapshots = append(d.Snapshots, &runnerv1.SnapshotRef{Id: id})
		}
	}
	if len(secretIDs) > 0 && f.autos.Secrets != nil && len(r.Status.PublicKey) == 32 {
		ids := make([]string, 0, len(secretIDs))
		for id := range secretIDs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		sealed, err := f.autos.Secrets.SealedForRunner(ctx, r.OrgID, r.Status.PublicKey, ids)
		if err != nil {
			return fmt.Errorf("seal secrets for runner %q: %w", r.ID, err)
		}
		d.Secrets = sealed
	}
	return nil
}

func command(script string, on spec.RunsOn) *runnerv1.Command {
	c := &runnerv1.Command{Script: script}
	if on.Docker != nil {
		c.DockerImage = on.Docker.Image
		c.DockerEnvironment = on.Docker.Environment
	}
	return c
}

// reportEnvironment records a runner's report on one of its environments.
func (f *Fleet) reportEnvironment(ctx context.Context, m *runnerv1.EnvironmentStatus) error {
	phase := environments.Phase(m.GetPhase().String())
	st := environments.Status{
		StatusVersion: m.GetStatusVersion(),
		Phase:         phase,
		RunnerACK:     &environments.RunnerACK{SpecVersion: m.GetSpecVersion(), StatusCode: "STATUS_CODE_OK"},
		Machine:       &environments.MachineStatus{Phase: machinePhase(phase)},
	}
	if msg := m.GetFailureMessage(); msg != "" {
		st.FailureMessage = []string{msg}
	}
	// A runner reports a location only once the content is in place (a
	// failed clone has none), so a failure beside one is the environment's,
	// not its content's: a secret file the runner refused.
	if loc := m.GetContentLocation(); loc != "" {
		st.Content = &environments.ContentStatus{Location: loc, Phase: "CONTENT_PHASE_READY", PrebuildID: m.GetFromSnapshot()}
	}
	af := &environments.AutomationsFileStatus{Path: m.GetAutomationsFilePath(), Presence: "PRESENCE_ABSENT"}
	if af.Path != "" {
		af.Presence, af.Phase = "PRESENCE_DISCOVERED", "CONTENT_PHASE_READY"
	}
	if msg := m.GetAutomationsFailureMessage(); msg != "" {
		af.Phase, af.FailureMessage = "CONTENT_PHASE_FAILED", msg
	}
	if phase == environments.PhaseRunning || af.FailureMessage != "" {
		st.AutomationsFile = af
	}
	e, err := f.autos.Environments.ReportStatus(ctx, m.GetId(), st)
	if err != nil || e.Spec.PrebuildID == "" || f.autos.Prebuilds == nil {
		return err
	}
	rep := prebuilds.Report{PrebuildID: e.Spec.PrebuildID, EnvironmentID: e.ID, Phase: phase, FailureMessage: m.GetFailureMessage()}
	if s := m.GetSnapshot(); s != nil && s.GetId() == e.Spec.PrebuildID {
		rep.Snapshot = &prebuilds.SnapshotReport{
			Commit: s.GetCommit(), SizeBytes: s.GetSizeBytes(), Failure: s.GetFailureMessage(), CreatedAt: s.GetCreatedAt().AsTime(),
		}
	}
	return f.autos.Prebuilds.Reported(ctx, rep)
}

// machinePhase is the machine's phase for an environment's: a runner's
// environment is its workspace on the runner's own machine.
func machinePhase(p environments.Phase) environments.MachinePhase {
	switch p {
	case environments.PhaseCreating, environments.PhaseStarting, environments.PhaseRunning,
		environments.PhaseStopping, environments.PhaseStopped, environments.PhaseDeleting, environments.PhaseDeleted:
		return environments.MachinePhase("PHASE_" + string(p[len("ENVIRONMENT_PHASE_"):]))
	}
	return "PHASE_UNSPECIFIED"
}

// reportService records a runner's report on a service.
func (f *Fleet) reportService(ctx context.Context, runnerID string, m *runnerv1.ServiceStatus) error {
	phase := automations.ServicePhase(m.GetPhase().String())
	msg, session := m.GetFailureMessage(), m.GetSession()
	u := automations.StatusUpdate{Phase: &phase, FailureMessage: &msg, Session: &session, Output: m.GetOutput()}
	if id := m.GetLogId(); id != "" && f.autos.LogURL != nil {
		url := f.autos.LogURL(runnerID, id)
		u.LogURL = &url
	}
	_, err := f.autos.Automations.ReportService(ctx, automations.ServiceReport{ID: m.GetId(), StatusVersion: m.GetStatusVersion(), StatusUpdate: u})
	return err
}

// reportExecution records a runner's report on a task execution. Its log is
// the runner's log of the whole execution: every step's in plan order.
func (f *Fleet) reportExecution(ctx context.Context, runnerID string, m *runnerv1.ExecutionStatus) error {
	rep := automations.ExecutionReport{
		ID: m.GetId(), StatusVersion: m.GetStatusVersion(),
		Phase:          automations.ExecutionPhase(m.GetPhase().String()),
		FailureMessage: m.GetFailureMessage(),
		Partial:        m.GetPartialSteps(),
	}
	if f.autos.LogURL != nil {
		rep.LogURL = f.autos.LogURL(runnerID, m.GetId())
	}
	for _, st := range m.GetSteps() {
		rep.Steps = append(rep.Steps, automations.StepStatus{
			ID: st.GetId(), Phase: automations.ExecutionPhase(st.GetPhase().String()),
			FailureMessage: st.GetFailureMessage(), Output: st.GetOutput(),
		})
	}
	return f.autos.Automations.ReportExecution(ctx, rep)
}

// StartAutomations applies what a runner found when an environment started
// or was asked to reload its file: the automations file, applied if a
// request to apply it is pending, and the triggers that fired. The caller
// in ctx must be the environment's runner.
func (f *Fleet) StartAutomations(ctx context.Context, req *runnerv1.StartAutomationsRequest) (*runnerv1.StartAutomationsResponse, error) {
	if f.autos == nil {
		return nil, apperr.FailedPrecondition("this control plane does not run automations")
	}
	var file *spec.File
	if req.GetFilePresent() {
		var err error
		if file, err = spec.Parse(req.GetAutomationsFile()); err != nil {
			return nil, err
		}
	}
	triggers := make([]spec.Trigger, 0, len(req.GetTriggers()))
	for _, t := range req.GetTriggers() {
		triggers = append(triggers, spec.Trigger(t))
	}
	res, err := f.autos.Automations.ApplyStart(ctx, req.GetEnvironmentId(), file, triggers, req.GetFileRequest())
	if err != nil {
		return nil, err
	}
	out := &runnerv1.StartAutomationsResponse{StartedServiceIds: res.Started}
	for _, x := range res.Executions {
		out.TaskExecutionIds = append(out.TaskExecutionIds, x.ID)
	}
	return out, nil
}

// LogReader is a log streamed from a runner.
type LogReader struct {
	r *relay
	// chunk is the buffer pending is the rest of, handed back to
	// TerminalCodec's pool once it is read.
	chunk []byte
}

// Read implements io.Reader over the log's chunks.
func (l *LogReader) Read(p []byte) (int, error) {
	for len(l.r.pending) == 0 {
		putTerminalChunk(l.chunk)
		l.chunk = nil
		b, err := l.r.Recv()
		if err != nil {
			return 0, err
		}
		l.r.pending, l.chunk = b, b
	}
	n := copy(p, l.r.pending)
	l.r.pending = l.r.pending[n:]
	return n, nil
}

// Chunks calls write with each chunk of the log as the runner sent it (up
// to 256 KiB), with no copy, until the log ends (it returns nil) or the
// stream or write fails. A chunk is valid only during its call: its buffer
// goes back to the pool afterwards.
func (l *LogReader) Chunks(write func([]byte) error) error {
	if len(l.r.pending) > 0 {
		err := write(l.r.pending)
		l.r.pending = nil
		if err != nil {
			return err
		}
	}
	for {
		putTerminalChunk(l.chunk)
		l.chunk = nil
		b, err := l.r.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		l.chunk = b
		if err := write(b); err != nil {
			return err
		}
	}
}

// Close ends the stream; the runner stops sending.
func (l *LogReader) Close() error {
	l.r.Close()
	return nil
}

// OpenLog asks runner runnerID of orgID for log logID: the whole log, and
// with follow everything written to it until its run ends. It fails with
// CodeNotFound when the runner has no such log and CodeUnavailable when the
// runner is not connected to this control plane.
func (f *Fleet) OpenLog(ctx context.Context, orgID, runnerID, logID string, follow bool) (io.ReadCloser, error) {
	if _, err := identity.RequireLogs(ctx, runnerID); err != nil {
		return nil, err
	}
	r, err := f.open(ctx, orgID, runnerID, &runnerv1.OpenTerminal{LogId: logID, Follow: follow, Raw: !f.LogsOnStreams}, "log")
	if err != nil {
		return nil, err
	}
	if msg := r.hello.GetError(); msg != "" {
		r.Close()
		return nil, apperr.NotFound("log %q: %s", logID, msg)
	}
	return &LogReader{r: r}, nil
}
