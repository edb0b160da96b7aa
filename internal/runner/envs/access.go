package envs

import (
	"context"
	"errors"
	"os"
	"slices"
	"sort"
	"strings"
)

// ErrNotRunning is the error of Access for an environment that does not
// run on this runner (yet): its content is not ready, it stopped or it is
// not this runner's.
var ErrNotRunning = errors.New("the environment does not run on this runner")

// Access is what a session into an environment (a shell, a command, SFTP)
// needs of it.
type Access struct {
	// Dir is the environment's checkout, where commands start.
	Dir string
	// Workspace is the environment's root ($RUNYARD_WORKSPACE).
	Workspace string
	// Env is the runner's environment without its RUNYARD_ variables, then
	// the environment's variables and secrets (KEY=value, sorted).
	Env []string
	// Done is closed when the environment stops running here (a stop, a
	// deletion, the runner's shutdown): the session must end then.
	Done <-chan struct{}
}

// Access returns what a session into environment id needs, or
// ErrNotRunning. The environment's variables and secrets are resolved as
// for its services.
func (m *Manager) Access(id string) (*Access, error) {
	m.mu.Lock()
	e := m.envs[id]
	if e == nil || !e.running || e.gone {
		m.mu.Unlock()
		return nil, ErrNotRunning
	}
	re := &runningEnv{dir: e.contentDir(), workspace: e.workspace(), vars: e.spec.GetEnv()}
	ds := m.desired
	if e.sessions == nil {
		e.sessions, e.endSessions = context.WithCancel(m.ctx)
	}
	done := e.sessions.Done()
	m.mu.Unlock()
	vars, err := m.environ(ds, re, nil)
	if err != nil {
		return nil, err
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "RUNYARD_") })
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = setenv(env, k, vars[k])
	}
	return &Access{Dir: re.dir, Workspace: re.workspace, Env: env, Done: done}, nil
}

// endSessionsLocked ends the sessions into e: it stops running here. m.mu
// is held.
func (e *env) endSessionsLocked() {
	if e.endSessions != nil {
		e.endSessions()
		e.sessions, e.endSessions = nil, nil
	}
}

func setenv(env []string, k, v string) []string {
	env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, k+"=") })
	return append(env, k+"="+v)
}
