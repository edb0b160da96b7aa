package envs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/statefile"
)

// env is one environment on this runner. Its fields are guarded by
// Manager.mu; its loop alone changes running and rec.
type env struct {
	m    *Manager
	id   string
	spec *runnerv1.EnvironmentSpec
	// gone says the environment left the desired set: remove it silently.
	gone bool
	// running says its content is ready and its automations were handed
	// over: its services and executions may run.
	running bool
	// owned are the services and executions it ever had.
	owned map[string]bool
	rec   record
	// status is the latest report.
	status                              *runnerv1.EnvironmentStatus
	automationsPath, automationsFailure string
	// fileRequest is the spec's automations_file_request the runner last
	// handed the file over for; a higher one is a reload. It starts at
	// zero after a runner restart, and the control plane applies nothing
	// for a request it already applied.
	fileRequest uint64

	// filesFailure says which secret files were refused (files.go); it
	// is part of every report but DELETING's and DELETED's.
	filesFailure string

	wake    chan struct{} // capacity 1
	started bool          // the loop runs

	// filesMu makes mounting the secret files one at a time and keeps it
	// apart from removing the workspace; it guards files and filesLoaded,
	// the paths mounted (files.go).
	filesMu     sync.Mutex
	files       []string
	filesLoaded bool

	// sessions ends when the environment stops running here: the
	// sessions into it (access.go) end with it.
	sessions    context.Context
	endSessions context.CancelFunc

	// prebuilding says the prebuild's goroutine runs (prebuild.go).
	prebuilding bool
}

// record is what survives a runner restart.
type record struct {
	// Cloned says the workspace's content is in place.
	Cloned bool `json:"cloned"`
	// FailedVersion is the spec version whose start failed; it is not
	// tried again.
	FailedVersion uint64 `json:"failedVersion,omitempty"`
	Failure       string `json:"failure,omitempty"`
	// ContentDir is where commands run: the first checkout.
	ContentDir string `json:"contentDir,omitempty"`
	// Deleted says the runner deleted the environment and reported it.
	Deleted bool `json:"deleted,omitempty"`
	// Running says its automations were handed over and it runs: a
	// restarted runner process takes it up as running, so that its
	// services, which outlived the previous process, are adopted, not
	// stopped while the environment would start again.
	Running bool `json:"running,omitempty"`
	// BootID is the host's boot id when the environment last started, and
	// DevcontainerStarted says a start fired postDevcontainerStart: the
	// next start fires postMachineStart only after a reboot, and
	// postDevcontainerStart only for new content (prebuild.go).
	BootID              string `json:"bootId,omitempty"`
	DevcontainerStarted bool   `json:"devcontainerStarted,omitempty"`
	// FromSnapshot is the snapshot the content was restored from.
	FromSnapshot string `json:"fromSnapshot,omitempty"`
	// Prebuild is a prebuild environment's progress.
	Prebuild *prebuildRecord `json:"prebuild,omitempty"`
}

func (m *Manager) newEnv(id string) *env {
	return &env{m: m, id: id, owned: map[string]bool{}, wake: make(chan struct{}, 1)}
}

func (e *env) root() string       { return filepath.Join(e.m.dir, e.id) }
func (e *env) workspace() string  { return filepath.Join(e.root(), "workspace") }
func (e *env) recordPath() string { return filepath.Join(e.root(), "record.json") }

// contentDir is where the environment's commands run.
func (e *env) contentDir() string {
	if e.rec.ContentDir != "" {
		return e.rec.ContentDir
	}
	return e.workspace()
}

func (e *env) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// startLocked starts e's loop once; m.mu is held.
func (m *Manager) startLocked(e *env) {
	if e.started {
		return
	}
	e.started = true
	m.wg.Add(1)
	go e.loop()
}

// loop converges the environment whenever it is kicked, until the manager
// closes or the environment is removed.
func (e *env) loop() {
	defer e.m.wg.Done()
	for {
		select {
		case <-e.m.ctx.Done():
			return
		case <-e.wake:
		}
		if e.converge() {
			return
		}
	}
}

// converge takes one step towards the desired phase; it reports whether the
// environment was removed.
func (e *env) converge() bool {
	m := e.m
	m.mu.Lock()
	spec, gone := e.spec, e.gone
	m.mu.Unlock()
	if gone {
		e.stop(gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_UNSPECIFIED)
		e.remove()
		m.mu.Lock()
		// Back in the set meanwhile: keep the entry and go on.
		if !e.gone {
			e.started = false
			m.startLocked(e)
			e.kick()
			m.mu.Unlock()
			return true
		}
		e.endSessionsLocked()
		delete(m.envs, e.id)
		m.mu.Unlock()
		return true
	}
	switch spec.GetDesiredPhase() {
	case gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING:
		e.start(spec)
	case gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED:
		e.stop(gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPING)
		// Every desired state kicks every environment: a stopped one
		// reports only what changed.
		if e.status.GetPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED ||
			e.status.GetSpecVersion() != spec.GetSpecVersion() ||
			e.status.GetFailureMessage() != e.failure(gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED, e.rec.Failure) {
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED, e.rec.Failure)
		}
	case gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED:
		if e.rec.Deleted {
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED, "")
			return false
		}
		e.stop(gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETING)
		e.remove()
		m.mu.Lock()
		e.rec = record{Deleted: true}
		m.mu.Unlock()
		// The record stays, so a report lost with the stream is repeated
		// instead of the environment being created again.
		if err := os.MkdirAll(e.root(), 0o700); err == nil {
			_ = statefile.Write(e.recordPath(), e.rec)
		}
		m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_DELETED, "")
	}
	return false
}

func (e *env) setRunning(v bool) {
	e.m.mu.Lock()
	changed := e.rec.Running != v
	e.running, e.rec.Running = v, v
	if !v {
		e.endSessionsLocked()
	}
	e.m.mu.Unlock()
	if changed && e.rec.Cloned {
		e.save()
	}
	e.m.sync()
}

// start brings the environment up: content, then automations.
func (e *env) start(spec *runnerv1.EnvironmentSpec) {
	m := e.m
	m.mu.Lock()
	running := e.running
	m.mu.Unlock()
	if running {
		if spec.GetAutomationsFileRequest() > e.fileRequest {
			// A user asked to reload the repository's file: hand it
			// over again, without triggers, and report what came of it.
			if _, ok := e.handOver(spec, nil); !ok {
				return
			}
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, "")
			return
		}
		if spec.GetPrebuildId() != "" {
			e.prebuild(spec) // after a runner restart: go on where it was
		}
		// A refused secret file (or its fix) while the environment runs
		// is reported too.
		if e.status.GetPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING || e.status.GetSpecVersion() != spec.GetSpecVersion() ||
			e.status.GetFailureMessage() != e.failure(gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, "") {
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, "")
		}
		return
	}
	if e.rec.FailedVersion != 0 && e.rec.FailedVersion == spec.GetSpecVersion() {
		if e.status.GetPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED {
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED, e.rec.Failure)
		}
		return
	}
	e.rec.Failure, e.rec.FailedVersion, e.rec.Deleted = "", 0, false
	if !e.rec.Cloned {
		m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_CREATING, "")
		dir, snap, err := e.restore(spec)
		if err == nil && snap == "" {
			dir, err = e.clone(spec)
		}
		if err != nil {
			e.rec.FailedVersion, e.rec.Failure = spec.GetSpecVersion(), err.Error()
			e.save()
			m.log.Warn("environment content failed", "environment", e.id, "err", err)
			m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED, e.rec.Failure)
			return
		}
		m.mu.Lock()
		e.rec.Cloned, e.rec.ContentDir, e.rec.FromSnapshot = true, dir, snap
		m.mu.Unlock()
		e.save()
	}
	// The secret files are in place before any automation starts. One
	// that is refused is named in the environment's failure message; the
	// environment starts anyway, and what needs the file fails on its own.
	m.mu.Lock()
	files, sealed := e.spec.GetFiles(), m.desired.GetSecrets()
	m.mu.Unlock()
	e.mountFiles(files, sealed)
	m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STARTING, "")
	ids, ok := e.handOver(spec, e.startTriggers(spec))
	if !ok {
		return // the manager closes, or the spec changed: converge again
	}
	e.startedOnce()
	if spec.GetPrebuildId() != "" && e.rec.Prebuild == nil {
		m.mu.Lock()
		e.rec.Prebuild = &prebuildRecord{Stage: "prebuild", Executions: ids}
		m.mu.Unlock()
		e.save()
	}
	e.setRunning(true)
	m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, "")
	if spec.GetPrebuildId() != "" {
		e.prebuild(spec)
	}
}

// stop stops the environment's services and executions and waits for them;
// phase, when set, is reported first.
func (e *env) stop(phase gitpodv1.EnvironmentPhase) {
	m := e.m
	m.mu.Lock()
	wasRunning := e.running
	m.mu.Unlock()
	if phase != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_UNSPECIFIED &&
		(wasRunning || e.status.GetPhase() != gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_STOPPED) {
		m.report(e, phase, "")
	}
	e.setRunning(false)
	m.waitIdle(m.ctx, e.id)
}

// remove deletes the workspace, with the secret files in it, and the
// records.
func (e *env) remove() {
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	if err := os.RemoveAll(e.root()); err != nil {
		e.m.log.Warn("remove environment workspace", "environment", e.id, "err", err)
	}
	e.m.mu.Lock()
	e.rec = record{}
	e.m.mu.Unlock()
	e.forgetFiles()
}

func (e *env) save() {
	if err := os.MkdirAll(e.root(), 0o700); err != nil {
		e.m.log.Warn("save environment record", "environment", e.id, "err", err)
		return
	}
	if err := statefile.Write(e.recordPath(), e.rec); err != nil {
		e.m.log.Warn("save environment record", "environment", e.id, "err", err)
	}
}

// prepareDir makes dir an empty directory.
func prepareDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("prepare workspace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("prepare workspace: %w", err)
	}
	return nil
}

// cloneTimeout bounds one git command.
const cloneTimeout = 10 * time.Minute

// clone fills the workspace from the spec's git initializers, in order, and
// returns the content directory (the first checkout, or the empty
// workspace).
func (e *env) clone(spec *runnerv1.EnvironmentSpec) (string, error) {
	ws := e.workspace()
	if err := prepareDir(ws); err != nil {
		return "", err
	}
	content := ws
	for i, g := range spec.GetGit() {
		loc := g.GetCheckoutLocation()
		if loc == "" {
			loc = repoName(g.GetRemoteUri())
		}
		if !filepath.IsLocal(loc) {
			return "", fmt.Errorf("git initializer %d: checkout location %q is outside the workspace", i, loc)
		}
		dst := filepath.Join(ws, loc)
		if i == 0 {
			content = dst
		}
		if err := e.cloneOne(g, dst, spec); err != nil {
			return "", fmt.Errorf("clone %s: %w", g.GetRemoteUri(), err)
		}
	}
	return content, nil
}

func (e *env) cloneOne(g *runnerv1.GitInitializer, dst string, spec *runnerv1.EnvironmentSpec) error {
	ctx, cancel := context.WithTimeout(e.m.ctx, cloneTimeout)
	defer cancel()
	args := []string{"clone", "--quiet"}
	target := g.GetCloneTarget()
	switch g.GetTargetMode() {
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_BRANCH, gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_TAG:
		if target == "" {
			return errors.New("cloneTarget is required for a branch or tag")
		}
		// A full ref (refs/pull/N/head of a pull request context URL) is
		// no branch clone --branch takes: it is fetched after the clone.
		if !strings.HasPrefix(target, "refs/") {
			args = append(args, "--branch", target)
		}
	}
	args = append(args, "--", g.GetRemoteUri(), dst)
	if err := git(ctx, "", args...); err != nil {
		return err
	}
	switch g.GetTargetMode() {
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_BRANCH, gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_TAG:
		if strings.HasPrefix(target, "refs/") {
			if err := git(ctx, dst, "fetch", "--quiet", "origin", "--", target); err != nil {
				return err
			}
			if err := git(ctx, dst, "checkout", "--quiet", "--detach", "FETCH_HEAD"); err != nil {
				return err
			}
		}
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_COMMIT:
		if target == "" {
			return errors.New("cloneTarget is required for a commit")
		}
		if err := git(ctx, dst, "checkout", "--quiet", "--detach", target); err != nil {
			// A commit no branch reaches (a pull request's, say) is
			// fetched by its hash, where the server allows that.
			if ferr := git(ctx, dst, "fetch", "--quiet", "origin", "--", target); ferr != nil {
				return err
			}
			if err := git(ctx, dst, "checkout", "--quiet", "--detach", target); err != nil {
				return err
			}
		}
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_LOCAL_BRANCH:
		if target == "" {
			return errors.New("cloneTarget is required for a local branch")
		}
		if err := git(ctx, dst, "checkout", "--quiet", "-b", target); err != nil {
			return err
		}
	}
	if u := g.GetUpstreamRemoteUri(); u != "" {
		if err := git(ctx, dst, "remote", "add", "upstream", u); err != nil {
			return err
		}
	}
	if n := spec.GetGitUsername(); n != "" {
		if err := git(ctx, dst, "config", "user.name", n); err != nil {
			return err
		}
	}
	if m := spec.GetGitEmail(); m != "" {
		if err := git(ctx, dst, "config", "user.email", m); err != nil {
			return err
		}
	}
	return nil
}

// git runs git in dir, never prompting for credentials; its error carries
// git's own message.
func git(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 1000 {
			msg = msg[len(msg)-1000:]
		}
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("git %s: %s", args[0], msg)
	}
	return nil
}

// repoName is the directory git clone would pick for uri.
func repoName(uri string) string {
	name := strings.TrimRight(uri, "/")
	if i := strings.LastIndexAny(name, "/:"); i >= 0 {
		name = name[i+1:]
	}
	name = strings.TrimSuffix(name, ".git")
	if name == "" || name == "." || name == ".." {
		return "repo"
	}
	return name
}

// maxAutomationsFile bounds the automations file read from a workspace.
const maxAutomationsFile = 1 << 20

// defaultAutomationsFiles are tried in order when the spec names none:
// runyard's own place, then the vendor's (Gitpod's, then Ona's).
var defaultAutomationsFiles = []string{".runyard/automations.yaml", ".gitpod/automations.yaml", ".ona/automations.yaml"}

// automationsFile reads the environment's automations file: its path
// relative to the content directory (empty when there is none) and bytes.
func (e *env) automationsFile(spec *runnerv1.EnvironmentSpec) (string, []byte, error) {
	paths := defaultAutomationsFiles
	// The control plane fills in the first default; the vendor's place is
	// tried after it.
	if p := spec.GetAutomationsFilePath(); p != "" && p != defaultAutomationsFiles[0] {
		paths = []string{p}
	}
	for _, p := range paths {
		if !filepath.IsLocal(p) {
			return "", nil, fmt.Errorf("automations file path %q is outside the workspace", p)
		}
		f, err := os.Open(filepath.Join(e.contentDir(), p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, nil, fmt.Errorf("read automations file %s: %w", p, err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxAutomationsFile+1))
		f.Close()
		if err != nil {
			return p, nil, fmt.Errorf("read automations file %s: %w", p, err)
		}
		if len(b) > maxAutomationsFile {
			return p, nil, fmt.Errorf("automations file %s is larger than %d bytes", p, maxAutomationsFile)
		}
		return p, b, nil
	}
	return "", nil, nil
}

// handOver gives the control plane the workspace's automations file and
// the triggers that fired (none for a reload), retrying while the control
// plane is away. The control plane applies the file only for a request to
// apply it that it has not applied yet. A file the control plane refuses is
// reported in the environment's status; the environment runs anyway. It
// reports false when the manager closes or the desired spec changed
// meanwhile, and otherwise the task executions the triggers created.
func (e *env) handOver(spec *runnerv1.EnvironmentSpec, triggers []string) ([]string, bool) {
	m := e.m
	path, data, err := e.automationsFile(spec)
	req := &runnerv1.StartAutomationsRequest{EnvironmentId: e.id, Triggers: triggers, FileRequest: spec.GetAutomationsFileRequest()}
	failure := ""
	if err != nil {
		failure = err.Error()
	} else if path != "" {
		req.FilePresent, req.AutomationsFile = true, data
	}
	wait := 500 * time.Millisecond
	var ids []string
	for m.cfg.Start != nil {
		res, err := m.cfg.Start(m.ctx, req)
		if err == nil {
			ids = res.GetTaskExecutionIds()
			break
		}
		msg := err.Error()
		var ce *connect.Error
		if errors.As(err, &ce) {
			msg = ce.Message()
		}
		code := connect.CodeOf(err)
		if req.FilePresent && (code == connect.CodeInvalidArgument || code == connect.CodeAlreadyExists || code == connect.CodeFailedPrecondition) {
			// The file is refused (invalid, or it would change what
			// users made through the API): say why, and still fire the
			// triggers on the automations as they are.
			failure = msg
			req.FilePresent, req.AutomationsFile = false, nil
			continue
		}
		if code == connect.CodeInvalidArgument || code == connect.CodeFailedPrecondition ||
			code == connect.CodeNotFound || code == connect.CodePermissionDenied {
			if failure == "" {
				failure = msg
			}
			break
		}
		m.log.Warn("hand the automations file over; retrying", "environment", e.id, "in", wait, "err", err)
		select {
		case <-m.ctx.Done():
			return nil, false
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
		m.mu.Lock()
		changed := e.spec.GetSpecVersion() != spec.GetSpecVersion() || e.gone
		m.mu.Unlock()
		if changed {
			e.kick()
			return nil, false
		}
	}
	m.mu.Lock()
	e.automationsPath, e.automationsFailure = path, failure
	e.fileRequest = spec.GetAutomationsFileRequest()
	m.mu.Unlock()
	return ids, true
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

func validID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("invalid ID %q", id)
	}
	return nil
}
