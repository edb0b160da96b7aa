package pods

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// DefaultRunnerTimeout is the runner timeout when Service.RunnerTimeout is
// zero; it is the fleet's default.
const DefaultRunnerTimeout = 30 * time.Second

// Limits on what a pod is created with.
const (
	MaxPromptBytes  = 32 << 10
	maxLabels       = 64
	maxLabelLength  = 63
	maxWorkdirBytes = 4096
)

func (s *Service) now() time.Time {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return now().UTC().Truncate(time.Microsecond)
}

func (s *Service) placer() placer {
	timeout := s.RunnerTimeout
	if timeout <= 0 {
		timeout = DefaultRunnerTimeout
	}
	return placer{now: s.now(), timeout: timeout}
}

func (s *Service) changed(orgID, runnerID string) {
	if s.Changed != nil && runnerID != "" {
		s.Changed(orgID, runnerID)
	}
}

// CreateInput is a pod to create.
type CreateInput struct {
	AgentTypeID   string
	InitialPrompt string
	// RunnerID is the numeric REST id of the runner the pod must run on;
	// nil lets the scheduler choose.
	RunnerID *int64
	Labels   []string
	Env      map[string]string
	Workdir  string
}

// Create validates a pod, places it and stores it, in one transaction with
// the placement (see Store.CreatePlacedPod). A pod no runner can take now is
// stored pending with the reason. It needs ScopePodsWrite and fails with
// CodeInvalid (an unknown agent type or runner names its field) and
// CodeFailedPrecondition when the requested runner cannot take the pod.
func (s *Service) Create(ctx context.Context, in CreateInput) (*Pod, error) {
	c, err := identity.Require(ctx, identity.ScopePodsWrite)
	if err != nil {
		return nil, err
	}
	labels, err := validateCreate(&in)
	if err != nil {
		return nil, err
	}
	agent, err := s.agentType(ctx, c.OrgID, in.AgentTypeID)
	if err != nil {
		return nil, err
	}
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	p := &Pod{
		Key:           key,
		OrgID:         c.OrgID,
		Status:        StatusPending,
		DesiredStatus: StatusRunning,
		AgentTypeID:   agent.ID,
		InitialPrompt: in.InitialPrompt,
		Labels:        labels,
		Workdir:       in.Workdir,
		Env:           maps.Clone(in.Env),
		CreatedAt:     s.now(),
	}
	if p.Env == nil {
		p.Env = map[string]string{}
	}
	p.Spec = agent.Resolve(p)
	var seq int64
	if in.RunnerID != nil {
		seq = *in.RunnerID
	}
	pl := s.placer()
	err = s.Store.CreatePlacedPod(ctx, p, pl.filter(c.OrgID, seq), func(p *Pod, cands []*Candidate) error {
		return pl.place(p, seq, cands)
	})
	if err != nil {
		return nil, fmt.Errorf("create pod: %w", err)
	}
	if p.RunnerID != "" {
		s.placements.Add(1)
	}
	s.changed(p.OrgID, p.RunnerID)
	return p, nil
}

// validateCreate checks in, cleans its workdir and returns its labels
// without duplicates.
func validateCreate(in *CreateInput) ([]string, error) {
	if in.AgentTypeID == "" {
		return nil, apperr.Invalid("agent_type_id", "is required")
	}
	switch {
	case strings.TrimSpace(in.InitialPrompt) == "":
		return nil, apperr.Invalid("initial_prompt", "is required")
	case len(in.InitialPrompt) > MaxPromptBytes:
		return nil, apperr.Invalid("initial_prompt", "at most %d bytes, got %d", MaxPromptBytes, len(in.InitialPrompt))
	case !utf8.ValidString(in.InitialPrompt) || strings.ContainsRune(in.InitialPrompt, 0):
		// A process's arguments and environment cannot hold NUL.
		return nil, apperr.Invalid("initial_prompt", "must be valid UTF-8 without NUL")
	}
	if in.RunnerID != nil && *in.RunnerID <= 0 {
		return nil, apperr.Invalid("runner_id", "must be a positive integer, got %d", *in.RunnerID)
	}
	if len(in.Labels) > maxLabels {
		return nil, apperr.Invalid("labels", "at most %d labels, got %d", maxLabels, len(in.Labels))
	}
	labels := []string{}
	for i, l := range in.Labels {
		if l == "" || len(l) > maxLabelLength || strings.ContainsFunc(l, isControl) {
			return nil, apperr.Invalid(fmt.Sprintf("labels[%d]", i), "must be 1 to %d characters without control characters", maxLabelLength)
		}
		if !slices.Contains(labels, l) {
			labels = append(labels, l)
		}
	}
	if err := validateEnv("env", in.Env); err != nil {
		return nil, err
	}
	wd, err := cleanWorkdir(in.Workdir)
	if err != nil {
		return nil, err
	}
	in.Workdir = wd
	return labels, nil
}

// cleanWorkdir accepts an absolute path, or a relative one (to the runner's
// pod directory) that cannot climb out of it with "..".
func cleanWorkdir(wd string) (string, error) {
	if wd == "" {
		return "", nil
	}
	if len(wd) > maxWorkdirBytes || strings.ContainsRune(wd, 0) || !utf8.ValidString(wd) {
		return "", apperr.Invalid("workdir", "must be valid UTF-8 of at most %d bytes without NUL", maxWorkdirBytes)
	}
	if path.IsAbs(wd) {
		return path.Clean(wd), nil
	}
	if slices.Contains(strings.Split(wd, "/"), "..") {
		return "", apperr.Invalid("workdir", "a relative workdir must not contain \"..\", got %q", wd)
	}
	return path.Clean(wd), nil
}

// newKey returns "pod-" and 12 random base-36 digits.
func newKey() (string, error) {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	out := []byte("pod-")
	buf := make([]byte, 32)
	for len(out) < 16 {
		if _, err := rand.Read(buf); err != nil {
			return "", apperr.Internal(err, "generate pod key")
		}
		for _, b := range buf {
			// 252 is 7*36: rejecting the rest keeps every digit equally likely.
			if b < 252 && len(out) < 16 {
				out = append(out, digits[b%36])
			}
		}
	}
	return string(out), nil
}

// agentType returns the built-in or the organization's agent type id, or
// CodeInvalid naming agent_type_id.
func (s *Service) agentType(ctx context.Context, orgID, id string) (*AgentType, error) {
	if a := builtinAgentType(id); a != nil {
		return a, nil
	}
	a, err := s.Store.FindAgentType(ctx, orgID, id)
	if apperr.CodeOf(err) == apperr.CodeNotFound {
		return nil, apperr.Invalid("agent_type_id", "unknown agent type %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find agent type %q: %w", id, err)
	}
	return a, nil
}

// Get returns the caller's organization's pod key. It needs ScopePodsRead
// and fails with CodeNotFound.
func (s *Service) Get(ctx context.Context, key string) (*Pod, error) {
	c, err := identity.Require(ctx, identity.ScopePodsRead)
	if err != nil {
		return nil, err
	}
	p, err := s.Store.FindPodByKey(ctx, c.OrgID, key)
	if err != nil {
		return nil, podNotFound(key, err)
	}
	if err := s.markUnreachable(ctx, c.OrgID, p); err != nil {
		return nil, err
	}
	return p, nil
}

func podNotFound(key string, err error) error {
	if apperr.CodeOf(err) == apperr.CodeNotFound {
		return apperr.NotFound("pod %q not found", key)
	}
	return fmt.Errorf("pod %q: %w", key, err)
}

// ListInput selects a page of pods.
type ListInput struct {
	// Status is empty for every status.
	Status Status
	// RunnerID is the numeric id of a runner; zero for every runner.
	RunnerID      int64
	Limit, Offset int
}

// List returns a page of the caller's organization's pods, newest first,
// and how many match in all. It needs ScopePodsRead.
func (s *Service) List(ctx context.Context, in ListInput) ([]*Pod, int, error) {
	c, err := identity.Require(ctx, identity.ScopePodsRead)
	if err != nil {
		return nil, 0, err
	}
	if err := validatePage(in.Status, in.Limit, in.Offset); err != nil {
		return nil, 0, err
	}
	if in.RunnerID < 0 {
		return nil, 0, apperr.Invalid("runner_id", "must be a positive integer, got %d", in.RunnerID)
	}
	items, total, err := s.Store.FindPods(ctx, Filter{OrgID: c.OrgID, RunnerSeq: in.RunnerID, Status: in.Status, Limit: in.Limit, Offset: in.Offset})
	if err != nil {
		return nil, 0, fmt.Errorf("list pods: %w", err)
	}
	if err := s.markUnreachable(ctx, c.OrgID, items...); err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

func validatePage(status Status, limit, offset int) error {
	if status != "" && !slices.Contains(Statuses, status) {
		return apperr.Invalid("status", "must be one of pending, running, terminated, failed; got %q", status)
	}
	if limit < 1 || limit > MaxLimit {
		return apperr.Invalid("limit", "must be 1 to %d, got %d", MaxLimit, limit)
	}
	if offset < 0 {
		return apperr.Invalid("offset", "must not be negative, got %d", offset)
	}
	return nil
}

// Terminate ends a pod: a pending pod without a runner is terminated at
// once; a placed or running pod keeps its status, with DesiredStatus
// terminated, until its runner confirms. A finished pod is returned as it
// is. It needs ScopePodsWrite and fails with CodeNotFound.
func (s *Service) Terminate(ctx context.Context, key string) (*Pod, error) {
	c, err := identity.Require(ctx, identity.ScopePodsWrite)
	if err != nil {
		return nil, err
	}
	now := s.now()
	notify := false
	p, err := s.Store.UpdatePod(ctx, c.OrgID, key, func(p *Pod) error {
		notify = false
		switch {
		case p.Status == StatusTerminated || p.Status == StatusFailed:
		case p.Status == StatusPending && p.RunnerID == "":
			p.Status, p.DesiredStatus = StatusTerminated, StatusTerminated
			p.Reason = "terminated before a runner took it"
			p.FinishedAt = &now
		default:
			notify = p.DesiredStatus != StatusTerminated
			p.DesiredStatus = StatusTerminated
		}
		return nil
	})
	if err != nil {
		return nil, podNotFound(key, err)
	}
	if notify {
		s.changed(p.OrgID, p.RunnerID)
	}
	if err := s.markUnreachable(ctx, c.OrgID, p); err != nil {
		return nil, err
	}
	return p, nil
}

// PlacePending places the pending pods that wait for a runner, of orgID or,
// when orgID is empty, of every organization; it returns how many it
// placed. The control plane calls it periodically and when runners change;
// it acts for the system and checks no caller.
func (s *Service) PlacePending(ctx context.Context, orgID string) (int, error) {
	orgs := []string{orgID}
	if orgID == "" {
		var err error
		if orgs, err = s.Store.FindOrgsWithPendingPods(ctx); err != nil {
			return 0, fmt.Errorf("find pending pods: %w", err)
		}
	}
	n := 0
	var errs []error
	for _, org := range orgs {
		pl := s.placer()
		placed, err := s.Store.PlacePendingPods(ctx, pl.filter(org, 0), func(p *Pod, cands []*Candidate) error {
			return pl.place(p, 0, cands)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("place pending pods of organization %s: %w", org, err))
			continue
		}
		n += len(placed)
		s.placements.Add(int64(len(placed)))
		notified := map[string]bool{}
		for _, p := range placed {
			if !notified[p.RunnerID] {
				notified[p.RunnerID] = true
				s.changed(p.OrgID, p.RunnerID)
			}
		}
	}
	return n, errors.Join(errs...)
}

// AgentTypes returns the built-in agent types and the caller's
// organization's custom ones. It needs ScopePodsRead.
func (s *Service) AgentTypes(ctx context.Context) (builtin, custom []*AgentType, err error) {
	c, err := identity.Require(ctx, identity.ScopePodsRead)
	if err != nil {
		return nil, nil, err
	}
	custom, err = s.Store.FindAgentTypes(ctx, c.OrgID)
	if err != nil {
		return nil, nil, fmt.Errorf("list agent types: %w", err)
	}
	return BuiltinAgentTypes(), custom, nil
}

// CreateAgentType adds a custom agent type to the caller's organization. It
// needs ScopePodsWrite and fails with CodeInvalid and CodeConflict.
func (s *Service) CreateAgentType(ctx context.Context, in AgentTypeInput) (*AgentType, error) {
	c, err := identity.Require(ctx, identity.ScopePodsWrite)
	if err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	a := &AgentType{
		ID: in.ID, OrgID: c.OrgID, Name: in.Name,
		Command: slices.Clone(in.Command), Env: maps.Clone(in.Env), CreatedAt: s.now(),
	}
	if a.Env == nil {
		a.Env = map[string]string{}
	}
	if err := s.Store.CreateAgentType(ctx, a); err != nil {
		if apperr.CodeOf(err) == apperr.CodeConflict {
			return nil, apperr.Conflict("agent type %q already exists", in.ID)
		}
		return nil, fmt.Errorf("create agent type: %w", err)
	}
	if s.AgentTypesChanged != nil {
		s.AgentTypesChanged(c.OrgID)
	}
	return a, nil
}

// AgentType returns a built-in agent type or one of the caller's
// organization's custom ones. It needs ScopePodsRead and fails with
// CodeNotFound.
func (s *Service) AgentType(ctx context.Context, id string) (*AgentType, error) {
	c, err := identity.Require(ctx, identity.ScopePodsRead)
	if err != nil {
		return nil, err
	}
	if a := builtinAgentType(id); a != nil {
		return a, nil
	}
	a, err := s.Store.FindAgentType(ctx, c.OrgID, id)
	if apperr.CodeOf(err) == apperr.CodeNotFound {
		return nil, apperr.NotFound("agent type %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find agent type %q: %w", id, err)
	}
	return a, nil
}

// AgentTypeUpdate changes a custom agent type: each field that is set
// replaces the type's.
type AgentTypeUpdate struct {
	Name    *string
	Command []string
	// Env replaces every variable.
	Env map[string]string
	// SetEnv adds or replaces these variables and UnsetEnv removes these,
	// on the type's current ones within the update: an editor that never
	// saw the values (they may be credentials; the console shows names
	// only) changes some without sending the others back. Both exclude
	// Env.
	SetEnv   map[string]string
	UnsetEnv []string
}

// UpdateAgentType changes a custom agent type of the caller's
// organization. Pods placed or running keep the command they were created
// with; pods still waiting for a runner, and pods created after, run the
// new one. It needs ScopePodsWrite and
// fails with CodeInvalid (a built-in type, a bad field) and CodeNotFound.
func (s *Service) UpdateAgentType(ctx context.Context, id string, u AgentTypeUpdate) (*AgentType, error) {
	c, err := identity.Require(ctx, identity.ScopePodsWrite)
	if err != nil {
		return nil, err
	}
	if builtinAgentType(id) != nil {
		return nil, apperr.Invalid("id", "%q is a built-in agent type and cannot be changed", id)
	}
	if u.Name == nil && u.Command == nil && u.Env == nil && len(u.SetEnv) == 0 && len(u.UnsetEnv) == 0 {
		return nil, apperr.Invalid("name", "nothing to change: set name, command or env")
	}
	if u.Env != nil && (len(u.SetEnv) > 0 || len(u.UnsetEnv) > 0) {
		return nil, apperr.Invalid("env", "replaces every variable: give it alone, or set and unset variables without it")
	}
	// Checked alone first so that a bad name is reported as the field the
	// caller used; the merged variables are checked again below.
	if err := validateEnv("setEnv", u.SetEnv); err != nil {
		return nil, err
	}
	a, err := s.Store.UpdateAgentType(ctx, c.OrgID, id, func(a *AgentType) error {
		in := AgentTypeInput{ID: a.ID, Name: a.Name, Command: a.Command, Env: a.Env}
		if u.Name != nil {
			in.Name = *u.Name
		}
		if u.Command != nil {
			in.Command = slices.Clone(u.Command)
		}
		if u.Env != nil {
			in.Env = maps.Clone(u.Env)
		}
		if len(u.SetEnv) > 0 || len(u.UnsetEnv) > 0 {
			in.Env = maps.Clone(in.Env)
			if in.Env == nil {
				in.Env = map[string]string{}
			}
			for i, k := range u.UnsetEnv {
				if _, ok := in.Env[k]; !ok {
					return apperr.Invalid(fmt.Sprintf("unsetEnv[%d]", i), "agent type %s has no variable %q", id, k)
				}
				delete(in.Env, k)
			}
			maps.Copy(in.Env, u.SetEnv)
		}
		if err := in.validate(); err != nil {
			return err
		}
		a.Name, a.Command, a.Env = in.Name, in.Command, in.Env
		if a.Env == nil {
			a.Env = map[string]string{}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update agent type %q: %w", id, err)
	}
	if err := s.respecWaiting(ctx, a); err != nil {
		return nil, fmt.Errorf("update agent type %q: %w", id, err)
	}
	if s.AgentTypesChanged != nil {
		s.AgentTypesChanged(c.OrgID)
	}
	return a, nil
}

// waiting returns the pods of agent type typeID of orgID that wait for a
// runner: pending, not placed.
func (s *Service) waiting(ctx context.Context, orgID, typeID string) ([]*Pod, error) {
	pending, _, err := s.Store.FindPods(ctx, Filter{OrgID: orgID, Status: StatusPending})
	if err != nil {
		return nil, fmt.Errorf("find waiting pods: %w", err)
	}
	var out []*Pod
	for _, p := range pending {
		if p.AgentTypeID == typeID && p.RunnerID == "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// respecWaiting gives the pods of agent type a that still wait for a runner
// the command a has now: runners are matched by the type's new binary, and
// a pod that has not started has nothing to keep. Placed and running pods
// keep the command they started with.
func (s *Service) respecWaiting(ctx context.Context, a *AgentType) error {
	waiting, err := s.waiting(ctx, a.OrgID, a.ID)
	if err != nil {
		return err
	}
	for _, p := range waiting {
		_, err := s.Store.UpdatePod(ctx, a.OrgID, p.Key, func(p *Pod) error {
			// Placed or ended since it was read: it stays as it is.
			if p.Status == StatusPending && p.RunnerID == "" {
				p.Spec = a.Resolve(p)
			}
			return nil
		})
		if err != nil && apperr.CodeOf(err) != apperr.CodeNotFound {
			return fmt.Errorf("pod %q: %w", p.Key, err)
		}
	}
	return nil
}

// DeleteAgentType removes a custom agent type of the caller's
// organization. Pods created with it keep running the command they were
// created with; new pods can no longer ask for it. It needs ScopePodsWrite
// and fails with CodeInvalid (a built-in type) and CodeNotFound.
func (s *Service) DeleteAgentType(ctx context.Context, id string) error {
	c, err := identity.Require(ctx, identity.ScopePodsWrite)
	if err != nil {
		return err
	}
	if builtinAgentType(id) != nil {
		return apperr.Invalid("id", "%q is a built-in agent type and cannot be deleted", id)
	}
	// A pod still waiting for a runner would wait forever: no runner
	// offers a type that is gone. Placed and running pods keep their
	// command and are not in the way.
	waiting, err := s.waiting(ctx, c.OrgID, id)
	if err != nil {
		return fmt.Errorf("delete agent type %q: %w", id, err)
	}
	if len(waiting) > 0 {
		return apperr.FailedPrecondition("%d pending pods wait for a runner with agent type %q: terminate them first", len(waiting), id)
	}
	if err := s.Store.DeleteAgentType(ctx, c.OrgID, id); err != nil {
		return fmt.Errorf("delete agent type %q: %w", id, err)
	}
	if s.AgentTypesChanged != nil {
		s.AgentTypesChanged(c.OrgID)
	}
	return nil
}
