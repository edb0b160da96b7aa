package pods

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Spec is one pod the control plane wants on this runner.
type Spec struct {
	// Key identifies the pod; it is unique for the pod's whole life, so a
	// Spec arriving again (after a reconnect) never starts a second process.
	Key string
	// Argv is the agent's command line, run without a shell.
	Argv []string
	// Env is added to the pod's minimal base environment (PATH, HOME,
	// TERM=xterm-256color, LANG, RUNYARD_POD_KEY) and wins over it.
	Env map[string]string
	// Workdir is where the agent runs: absolute, or relative to the pod's
	// own StateDir/pods/<key>/work (the default). It is created.
	Workdir string
	// Cols and Rows are the initial terminal size (default 80x24).
	Cols, Rows int
	// Input is typed into the terminal once, right after the start: for
	// agents that take their prompt as typed input.
	Input string
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// validKey reports whether key can name a pod: it becomes a directory name.
func validKey(key string) error {
	if !keyPattern.MatchString(key) {
		return fmt.Errorf("pod key %q: must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", key)
	}
	return nil
}

// Validate reports what keeps the spec from being run.
func (s Spec) Validate() error {
	if err := validKey(s.Key); err != nil {
		return err
	}
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("argv: must name the command to run")
	}
	if !filepath.IsAbs(s.Workdir) {
		if c := filepath.Clean(s.Workdir); c == ".." || strings.HasPrefix(c, "../") {
			return fmt.Errorf("workdir %q: a relative workdir must stay inside the pod's directory", s.Workdir)
		}
	}
	if s.Cols < 0 || s.Rows < 0 || s.Cols > 65535 || s.Rows > 65535 {
		return fmt.Errorf("terminal size %dx%d: must be between 0 and 65535", s.Cols, s.Rows)
	}
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env: invalid variable name %q", k)
		}
	}
	return nil
}

// Status is what a pod reports to the control plane. The zero value is not a
// status; pending exists only on the control plane.
type Status int

const (
	StatusRunning Status = iota + 1
	StatusTerminated
	StatusFailed
)

var statusNames = map[Status]string{
	StatusRunning:    "running",
	StatusTerminated: "terminated",
	StatusFailed:     "failed",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText writes the REST API's name of the status.
func (s Status) MarshalText() ([]byte, error) {
	if _, ok := statusNames[s]; !ok {
		return nil, fmt.Errorf("unknown pod status %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads a status written by MarshalText.
func (s *Status) UnmarshalText(b []byte) error {
	for k, n := range statusNames {
		if n == string(b) {
			*s = k
			return nil
		}
	}
	return fmt.Errorf("unknown pod status %q", b)
}

// Final reports whether the pod has ended.
func (s Status) Final() bool { return s == StatusTerminated || s == StatusFailed }

// Event is a pod's status at one moment, as the daemon forwards it to the
// control plane.
type Event struct {
	Key    string `json:"key"`
	Status Status `json:"status"`
	// ExitCode is the agent's exit code, or 128+signal when a signal killed
	// it, once the pod ended; -1 when no process ran or its end was not seen
	// (it could not start, or the runner restarted under it).
	ExitCode int `json:"exitCode"`
	// Reason says why the pod ended, in words for a user: "exit code 3",
	// "killed by SIGKILL", "terminated on request", "runner restarted".
	Reason     string    `json:"reason,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Errors returned by the Manager; match them with errors.Is.
var (
	ErrUnknownPod   = errors.New("unknown pod")
	ErrPodExited    = errors.New("the pod has ended")
	ErrDetached     = errors.New("detached")
	ErrSlowAttacher = errors.New("attacher fell too far behind the pod's output and was disconnected; attach again")
	ErrClosed       = errors.New("pod manager is closed")
	ErrNotOpen      = errors.New("pod manager is not open")
)
