// Package envaccess is the way into a running environment: a command or a
// shell (with or without a terminal), an SFTP server, a TCP connection to a
// port on the environment's loopback. Each is one session, carried from
// the client through the control plane to the environment's runner over
// the runner's own outbound connection (the runner opens a Session stream
// when its Connect stream asks it to), so the runner needs no inbound
// port. The rules (who may open what, in which environment) are here; the
// WebSocket API (internal/api/rest) and the SSH server (internal/sshserver)
// are adapters over Service.Open.
//
//	client ──WebSocket / SSH channel──▶ control plane ──Session stream──▶ runner ──▶ process / port
//
// A session ends when either side ends it; the runner then kills what the
// session started (its process group), so a detached client leaves nothing
// running.
package envaccess

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// Kind is what a session runs.
type Kind int

const (
	// KindExec runs a command, or the login shell when Argv is empty.
	KindExec Kind = iota + 1
	// KindTCP connects to Port on the environment's loopback.
	KindTCP
	// KindSFTP serves SFTP in the environment's checkout.
	KindSFTP
)

func (k Kind) String() string {
	switch k {
	case KindExec:
		return "exec"
	case KindTCP:
		return "tcp"
	case KindSFTP:
		return "sftp"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Request opens a session in an environment.
type Request struct {
	EnvironmentID string
	Kind          Kind
	// Argv is the command (KindExec); empty runs a login shell, or
	// Command when set.
	Argv []string
	// Command is a command line for the login shell (shell -c), as SSH's
	// exec request carries it; Argv is then empty.
	Command string
	// TTY runs the command in a pseudo-terminal of Cols x Rows (80x24 when
	// zero); its stderr then comes with its stdout.
	TTY        bool
	Cols, Rows int
	// Env adds variables of the client (TERM, LANG); the environment's own
	// variables and secrets win over them.
	Env map[string]string
	// Port is the port to connect to (KindTCP).
	Port int
	// Raw (KindTCP) asks the runner to carry the connection on a
	// connection of its own (rawconn) instead of a Session stream: the
	// Stream is then a RawStream, unless the runner could not.
	Raw bool
}

// Frame is output of a session: stdout, or stderr when Stderr is set.
type Frame struct {
	Stderr bool
	Data   []byte
}

// Exit is how a session ended.
type Exit struct {
	// Code is the command's exit status (128+N after signal N) when
	// HasCode; a TCP or SFTP session has none.
	Code    int
	HasCode bool
	// Signal names the signal that ended the command ("KILL"), if one did.
	Signal string
	// Err says why the session ended without an exit status (the runner
	// went away).
	Err string
}

// Stream is one open session. Recv is used from one goroutine, the others
// from any; Close ends the session and the runner kills what it started.
type Stream interface {
	// Recv returns the next output; io.EOF once the session ended (Exit
	// says how).
	Recv() (Frame, error)
	Exit() Exit
	// Write sends bytes to the command's stdin (the connection).
	Write(p []byte) error
	// CloseStdin closes the command's stdin (the connection's write side).
	CloseStdin() error
	Resize(cols, rows int) error
	// Signal sends a signal by name (INT, TERM, HUP, KILL, QUIT, USR1,
	// USR2, WINCH) to the command.
	Signal(name string) error
	Close()
}

// RawStream is a session carried on a connection of its own
// (Request.Raw): Conn's bytes are the forwarded connection's, both ways,
// and its half-close is the connection's. Recv and Write work on it too.
type RawStream interface {
	Stream
	Conn() net.Conn
}

// Raw returns st's connection when it is a RawStream.
func Raw(st Stream) (net.Conn, bool) {
	for {
		switch s := st.(type) {
		case RawStream:
			return s.Conn(), true
		case interface{ Unwrap() Stream }:
			st = s.Unwrap()
		default:
			return nil, false
		}
	}
}

// Opener reaches an environment's runner and opens a session there
// (internal/fleet). It fails with a replicaproxy.ElsewhereError when
// another replica holds the runner's stream.
type Opener interface {
	OpenSession(ctx context.Context, orgID, runnerID string, req Request) (Stream, error)
}

// Environments finds environments; the store is one.
type Environments interface {
	FindEnvironmentByID(ctx context.Context, orgID, id string) (*environments.Environment, error)
}

// Store is the storage of environment access.
type Store interface {
	// FindEnvironmentOfAnyOrganization finds an environment by its ID
	// alone, for an SSH login, which names the environment but no
	// organization. It fails with CodeNotFound.
	FindEnvironmentOfAnyOrganization(ctx context.Context, id string) (*environments.Environment, error)
}

// Service opens sessions into environments.
type Service struct {
	Environments Environments
	// Store finds the environment of an SSH login (ssh.go).
	Store Store
	// UserKeys, when set, lets users' own SSH keys log in (userkeys.go).
	UserKeys UserKeys
	Opener   Opener
	// Active, when set, records activity on the environment (an inactivity
	// stop counts from the last one), as the control plane's own write:
	// ctx carries no caller. Its errors are its own to log. It is called
	// when a session opens and then, while sessions stay open, at most
	// once per interval (activity.go).
	Active func(ctx context.Context, orgID, envID, source string)
	// Now is the clock of the activity throttle; nil is time.Now.
	Now func() time.Time

	actOnce sync.Once
	act     *activity
}

func (s *Service) activity() *activity {
	s.actOnce.Do(func() {
		now := s.Now
		if now == nil {
			now = time.Now
		}
		s.act = &activity{mark: s.Active, now: now}
	})
	return s.act
}

// InUse returns what has a session open in the environment on this
// replica ("ssh", "port-forward", "preview", ...), or "" when nothing
// does: the inactivity sweep does not stop an environment in use.
func (s *Service) InUse(orgID, envID string) string {
	return s.activity().inUse(envID)
}

// Bounds of a request: a command line and its variables are typed, not
// bulk data.
const (
	maxArgs     = 1024
	maxArgBytes = 128 << 10
	maxEnv      = 64
)

// Signals are the signal names a session may send.
var Signals = []string{"INT", "TERM", "HUP", "KILL", "QUIT", "USR1", "USR2", "WINCH"}

// Open opens a session in the caller's organization's environment. It needs
// ScopeEnvironmentsWrite (a shell can change everything in the
// environment); another organization's environment is CodeNotFound, one that
// does not run CodeFailedPrecondition, one whose runner is not connected
// CodeUnavailable (or replicaproxy.ElsewhereError: relay the request to the
// replica that holds it). source names the surface for the activity record
// ("exec", "ssh", "port-forward").
func (s *Service) Open(ctx context.Context, req Request, source string) (Stream, error) {
	return s.open(ctx, req, source, nil)
}

// open is Open; check, when set, refuses the environment as read now.
func (s *Service) open(ctx context.Context, req Request, source string, check func(*environments.Environment) error) (Stream, error) {
	c, err := identity.Require(ctx, identity.ScopeEnvironmentsWrite)
	if err != nil {
		return nil, err
	}
	if err := identity.ValidateUUID("environmentId", req.EnvironmentID); err != nil {
		return nil, err
	}
	if err := validate(&req); err != nil {
		return nil, err
	}
	e, err := s.Environments.FindEnvironmentByID(ctx, c.OrgID, req.EnvironmentID)
	if err != nil {
		if apperr.Is(err, apperr.CodeNotFound) {
			return nil, apperr.NotFound("environment %q not found", req.EnvironmentID)
		}
		return nil, fmt.Errorf("find environment: %w", err)
	}
	if check != nil {
		if err := check(e); err != nil {
			return nil, err
		}
	}
	return s.openIn(ctx, e, req, source)
}

// openIn opens a session in e, which the caller may open, and tracks its
// activity.
func (s *Service) openIn(ctx context.Context, e *environments.Environment, req Request, source string) (Stream, error) {
	if err := Runs(e); err != nil {
		return nil, err
	}
	if s.Opener == nil {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "environment access is not available on this control plane"}
	}
	st, err := s.Opener.OpenSession(ctx, e.OrgID, e.RunnerID, req)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, nil
	}
	a := s.activity()
	a.opened(e, source)
	return &trackedStream{Stream: st, a: a, envID: e.ID}, nil
}

// OpenPort opens a TCP connection to port in e on behalf of the control
// plane itself: the preview proxy (internal/preview), which decided who
// may reach the port by its own rules (the port's admission), calls it
// with no caller. It asks for a raw session (Request.Raw): the Stream is a
// RawStream when the runner could carry it so. It fails as Open does.
func (s *Service) OpenPort(ctx context.Context, e *environments.Environment, port int, source string) (Stream, error) {
	req := Request{EnvironmentID: e.ID, Kind: KindTCP, Port: port, Raw: true}
	if err := validate(&req); err != nil {
		return nil, err
	}
	return s.openIn(ctx, e, req, source)
}

// Runs refuses an environment that should not run: there is nothing to
// enter (CodeFailedPrecondition). Whether it runs yet is the runner's to
// say (its reported phase may lag): a runner refuses a session into an
// environment whose content is not ready.
func Runs(e *environments.Environment) error {
	if e.Spec.DesiredPhase != environments.PhaseRunning {
		return apperr.FailedPrecondition("environment %q is %s, not running: start it first (runyard environments start %s)",
			e.ID, phaseName(e.Status.Phase), e.ID)
	}
	if e.RunnerID == "" {
		return apperr.FailedPrecondition("environment %q has no runner", e.ID)
	}
	return nil
}

func phaseName(p environments.Phase) string {
	s := strings.ToLower(strings.TrimPrefix(string(p), "ENVIRONMENT_PHASE_"))
	if s == "" || s == "unspecified" {
		return "not started"
	}
	return s
}

func validate(req *Request) error {
	switch req.Kind {
	case KindExec:
		if len(req.Argv) > maxArgs {
			return apperr.Invalid("command", "at most %d arguments, got %d", maxArgs, len(req.Argv))
		}
		n := 0
		for i, a := range req.Argv {
			n += len(a)
			if strings.IndexByte(a, 0) >= 0 {
				return apperr.Invalid(fmt.Sprintf("command[%d]", i), "must not contain a NUL byte")
			}
		}
		if n > maxArgBytes {
			return apperr.Invalid("command", "at most %d bytes in all, got %d", maxArgBytes, n)
		}
		if req.Command != "" && len(req.Argv) > 0 {
			return apperr.Invalid("command", "give a command line or arguments, not both")
		}
		if len(req.Command) > maxArgBytes || strings.IndexByte(req.Command, 0) >= 0 {
			return apperr.Invalid("command", "at most %d bytes without NUL", maxArgBytes)
		}
		if len(req.Argv) > 0 && req.Argv[0] == "" {
			return apperr.Invalid("command[0]", "must name a program")
		}
	case KindTCP:
		if req.Port < 1 || req.Port > 65535 {
			return apperr.Invalid("port", "must be between 1 and 65535, got %d", req.Port)
		}
	case KindSFTP:
	default:
		return apperr.Invalid("kind", "unknown session kind %d", int(req.Kind))
	}
	if req.Cols < 0 || req.Rows < 0 || req.Cols > 65535 || req.Rows > 65535 {
		return apperr.Invalid("cols", "terminal size %dx%d: cols and rows must be between 1 and 65535", req.Cols, req.Rows)
	}
	if req.TTY && (req.Cols == 0 || req.Rows == 0) {
		req.Cols, req.Rows = 80, 24
	}
	if len(req.Env) > maxEnv {
		return apperr.Invalid("env", "at most %d variables, got %d", maxEnv, len(req.Env))
	}
	for k, v := range req.Env {
		if !validEnvName(k) {
			return apperr.Invalid("env", "%q is not a variable name (letters, digits and _, not starting with a digit)", k)
		}
		if len(v) > 4096 || strings.IndexByte(v, 0) >= 0 {
			return apperr.Invalid("env", "the value of %s must be at most 4096 bytes without NUL", k)
		}
	}
	return nil
}

func validEnvName(k string) bool {
	if k == "" || len(k) > 256 {
		return false
	}
	for i, r := range k {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ReadAll collects a session's output until it ends: for tests and short
// commands.
func ReadAll(st Stream) (stdout, stderr []byte, exit Exit, err error) {
	for {
		f, err := st.Recv()
		if err == io.EOF {
			return stdout, stderr, st.Exit(), nil
		}
		if err != nil {
			return stdout, stderr, Exit{}, err
		}
		if f.Stderr {
			stderr = append(stderr, f.Data...)
		} else {
			stdout = append(stdout, f.Data...)
		}
	}
}
