package envs

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/runner/automations"
)

// This file is a prebuild on the runner and the triggers an environment's
// start fires.
//
// A prebuild environment (EnvironmentSpec.prebuild_id):
//
//	clone ─▶ StartAutomations[prebuild] ─▶ RUNNING ─▶ wait for those executions
//	      ─▶ StartAutomations[beforeSnapshot] ─▶ wait ─▶ archive the workspace
//	      ─▶ report EnvironmentStatus.snapshot (made, or why not)
//
// The control plane then records the snapshot and deletes the environment.
// The steps are remembered in the environment's record, so a runner restart
// goes on where it was instead of running a trigger twice (the control
// plane fires each trigger's tasks once per start anyway).

// prebuildRecord is a prebuild's progress, in the environment's record.
type prebuildRecord struct {
	// Stage is "prebuild" (its tasks run), "beforeSnapshot" (those run) or
	// "done" (Snapshot is the outcome).
	Stage      string   `json:"stage"`
	Executions []string `json:"executions,omitempty"`
	Snapshot   *struct {
		Commit    string    `json:"commit,omitempty"`
		Size      int64     `json:"size,omitempty"`
		Failure   string    `json:"failure,omitempty"`
		CreatedAt time.Time `json:"createdAt"`
	} `json:"snapshot,omitempty"`
}

// startTriggers returns what this start of e fires: a prebuild fires
// prebuild alone; any other start fires postEnvironmentStart,
// postDevcontainerStart on the environment's first start and after its
// content was made anew (runyard has no devcontainer to rebuild: the
// workspace is its content), and postMachineStart on the first start and
// when the host booted since the environment last ran (its boot id
// changed). m.mu is not held.
func (e *env) startTriggers(spec *runnerv1.EnvironmentSpec) []string {
	if spec.GetPrebuildId() != "" {
		return []string{"prebuild"}
	}
	t := []string{"postEnvironmentStart"}
	if !e.rec.DevcontainerStarted {
		t = append(t, "postDevcontainerStart")
	}
	if boot := e.m.bootID(); e.rec.BootID == "" || e.rec.BootID != boot {
		t = append(t, "postMachineStart")
	}
	return t
}

// startedOnce records what a start that fired triggers leaves for the next.
func (e *env) startedOnce() {
	e.m.mu.Lock()
	e.rec.DevcontainerStarted = true
	e.rec.BootID = e.m.bootID()
	e.m.mu.Unlock()
	e.save()
}

func (m *Manager) bootID() string {
	if m.cfg.BootID != nil {
		return m.cfg.BootID()
	}
	return ""
}

// runContext is a context that ends when e stops running here.
func (e *env) runContext() context.Context {
	e.m.mu.Lock()
	defer e.m.mu.Unlock()
	if e.sessions == nil {
		e.sessions, e.endSessions = context.WithCancel(e.m.ctx)
	}
	return e.sessions
}

// prebuild goes on with a running prebuild environment's steps, once; it
// runs in its own goroutine so that the environment's loop still follows
// its desired phase (a stop or delete ends the prebuild).
func (e *env) prebuild(spec *runnerv1.EnvironmentSpec) {
	m := e.m
	m.mu.Lock()
	if e.prebuilding || e.rec.Prebuild == nil || e.rec.Prebuild.Stage == "done" {
		m.mu.Unlock()
		return
	}
	e.prebuilding = true
	m.mu.Unlock()
	ctx := e.runContext()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer func() {
			m.mu.Lock()
			e.prebuilding = false
			m.mu.Unlock()
		}()
		e.prebuildSteps(ctx, spec)
	}()
}

func (e *env) prebuildSteps(ctx context.Context, spec *runnerv1.EnvironmentSpec) {
	m := e.m
	rec := func() prebuildRecord {
		m.mu.Lock()
		defer m.mu.Unlock()
		return *e.rec.Prebuild
	}
	set := func(p prebuildRecord) {
		m.mu.Lock()
		e.rec.Prebuild = &p
		m.mu.Unlock()
		e.save()
	}
	p := rec()
	if p.Stage == "prebuild" {
		if failure, ok := e.waitExecutions(ctx, p.Executions); !ok {
			return
		} else if failure != "" {
			e.prebuildDone(spec, "", 0, "prebuild: "+failure)
			return
		}
		ids, ok := e.fire(ctx, spec, "beforeSnapshot")
		if !ok {
			return
		}
		p = prebuildRecord{Stage: "beforeSnapshot", Executions: ids}
		set(p)
	}
	if p.Stage == "beforeSnapshot" {
		if failure, ok := e.waitExecutions(ctx, p.Executions); !ok {
			return
		} else if failure != "" {
			e.prebuildDone(spec, "", 0, "beforeSnapshot: "+failure)
			return
		}
	}
	meta := snapshotMeta{ID: spec.GetPrebuildId(), CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if g := spec.GetGit(); len(g) > 0 {
		meta.Repository, meta.Location = g[0].GetRemoteUri(), checkoutLocation(g[0])
		meta.Commit = headCommit(ctx, e.contentDir())
	}
	meta, err := m.writeSnapshot(ctx, e.workspace(), meta)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		e.prebuildDone(spec, "", 0, err.Error())
		return
	}
	m.log.Info("snapshot made", "environment", e.id, "prebuild", meta.ID, "commit", meta.Commit, "bytes", meta.Size)
	m.makeSpare(meta.ID)
	e.prebuildDone(spec, meta.Commit, meta.Size, "")
}

// prebuildDone records and reports a prebuild's outcome.
func (e *env) prebuildDone(spec *runnerv1.EnvironmentSpec, commit string, size int64, failure string) {
	m := e.m
	m.mu.Lock()
	p := &prebuildRecord{Stage: "done"}
	p.Snapshot = &struct {
		Commit    string    `json:"commit,omitempty"`
		Size      int64     `json:"size,omitempty"`
		Failure   string    `json:"failure,omitempty"`
		CreatedAt time.Time `json:"createdAt"`
	}{commit, size, failure, time.Now().UTC()}
	e.rec.Prebuild = p
	m.mu.Unlock()
	e.save()
	m.report(e, gitpodv1.EnvironmentPhase_ENVIRONMENT_PHASE_RUNNING, "")
}

// snapshotReportLocked is the report of a finished prebuild; m.mu is held.
func (e *env) snapshotReportLocked() *runnerv1.SnapshotReport {
	p := e.rec.Prebuild
	if p == nil || p.Stage != "done" || p.Snapshot == nil || e.spec.GetPrebuildId() == "" {
		return nil
	}
	return &runnerv1.SnapshotReport{
		Id: e.spec.GetPrebuildId(), Commit: p.Snapshot.Commit, SizeBytes: p.Snapshot.Size,
		FailureMessage: p.Snapshot.Failure, CreatedAt: timestamppb.New(p.Snapshot.CreatedAt),
	}
}

// fire hands the automations over with one trigger and returns the
// executions it created.
func (e *env) fire(ctx context.Context, spec *runnerv1.EnvironmentSpec, trigger string) ([]string, bool) {
	wait := 500 * time.Millisecond
	for {
		res, err := e.m.cfg.Start(ctx, &runnerv1.StartAutomationsRequest{EnvironmentId: e.id, Triggers: []string{trigger}, FileRequest: spec.GetAutomationsFileRequest()})
		if err == nil {
			return res.GetTaskExecutionIds(), true
		}
		e.m.log.Warn("fire trigger; retrying", "environment", e.id, "trigger", trigger, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// waitExecutions waits until every execution of ids finished and returns
// the first failure; ok is false when ctx ended first. An execution the
// desired state has not brought yet is waited for.
func (e *env) waitExecutions(ctx context.Context, ids []string) (failure string, ok bool) {
	m := e.m
	for {
		m.mu.Lock()
		ch := m.changed
		done := true
		failure = ""
		for _, id := range ids {
			st := m.executions[id]
			if st == nil || !st.Phase.Final() {
				done = false
				break
			}
			if st.Phase != automations.ExecutionSucceeded && failure == "" {
				failure = fmt.Sprintf("task execution %s %s", id, strings.ToLower(string(st.Phase)))
				if st.FailureMessage != "" {
					failure += ": " + st.FailureMessage
				}
			}
		}
		m.mu.Unlock()
		if done {
			return failure, true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", false
		case <-time.After(time.Second):
		}
	}
}

// headCommit is the commit checked out in dir, or "" when there is none.
func headCommit(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func checkoutLocation(g *runnerv1.GitInitializer) string {
	if loc := g.GetCheckoutLocation(); loc != "" {
		return loc
	}
	return repoName(g.GetRemoteUri())
}

// remoteCommit is the commit a git initializer would check out, asked of
// its remote without cloning (git ls-remote): a commit target is itself; a
// branch is the branch's head; no target is the remote's HEAD. Anything
// else (tags, pull request refs, a local branch) is "": no snapshot
// serves it.
func remoteCommit(ctx context.Context, g *runnerv1.GitInitializer) string {
	ref := ""
	switch g.GetTargetMode() {
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_COMMIT:
		return g.GetCloneTarget()
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_BRANCH:
		if strings.HasPrefix(g.GetCloneTarget(), "refs/") || g.GetCloneTarget() == "" {
			return ""
		}
		ref = "refs/heads/" + g.GetCloneTarget()
	case gitpodv1.GitInitializer_CLONE_TARGET_MODE_UNSPECIFIED, gitpodv1.GitInitializer_CLONE_TARGET_MODE_REMOTE_HEAD:
		ref = "HEAD"
	default:
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--", g.GetRemoteUri(), ref)
	cmd.Env = append(cmd.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true")
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && name == ref {
			return sha
		}
	}
	return ""
}

// restore fills the workspace from the newest kept snapshot of the spec's
// repository at the commit its initializer names, and returns the content
// directory and the snapshot's ID; "" when no snapshot serves (the caller
// clones). Only an environment with one git initializer is restored: a
// snapshot holds one checkout.
func (e *env) restore(spec *runnerv1.EnvironmentSpec) (string, string, error) {
	g := spec.GetGit()
	if len(g) != 1 || spec.GetPrebuildId() != "" {
		return "", "", nil
	}
	m := e.m
	commit := remoteCommit(m.ctx, g[0])
	if commit == "" {
		return "", "", nil
	}
	loc := checkoutLocation(g[0])
	snap := m.findSnapshot(g[0].GetRemoteUri(), loc, commit)
	if snap == nil {
		return "", "", nil
	}
	ws := e.workspace()
	if err := prepareDir(ws); err != nil {
		return "", "", err
	}
	if m.takeSpare(m.ctx, snap.ID, ws) {
		m.log.Info("took spare workspace", "environment", e.id, "snapshot", snap.ID)
	} else if err := m.restoreSnapshot(m.ctx, snap.ID, ws); err != nil {
		// A snapshot that does not restore is not the environment's
		// failure: it is cloned instead.
		m.log.Warn("restore snapshot; cloning instead", "environment", e.id, "snapshot", snap.ID, "err", err)
		return "", "", nil
	}
	// The next start's spare, now that this one's files are written.
	m.makeSpare(snap.ID)
	dir := ws + "/" + loc
	ctx, cancel := context.WithTimeout(m.ctx, cloneTimeout)
	defer cancel()
	// What the clone would have set: the user's name and email.
	if n := spec.GetGitUsername(); n != "" {
		if err := git(ctx, dir, "config", "user.name", n); err != nil {
			return "", "", err
		}
	}
	if em := spec.GetGitEmail(); em != "" {
		if err := git(ctx, dir, "config", "user.email", em); err != nil {
			return "", "", err
		}
	}
	m.log.Info("workspace restored from snapshot", "environment", e.id, "snapshot", snap.ID, "commit", commit)
	return dir, snap.ID, nil
}
