package pods

import (
	"context"
	"fmt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

// Terminal is a pod's terminal on its runner, relayed to the control plane.
// Recv and the writers may be used from two goroutines; Close ends it and
// leaves the pod running.
type Terminal interface {
	// Scrollback is the pod's retained output when the terminal opened;
	// Recv continues exactly where it ends.
	Scrollback() []byte
	// Status is the pod's state on the runner when the terminal opened.
	Status() Report
	// Recv returns the pod's next output; io.EOF once the terminal ended
	// (End says how).
	Recv() ([]byte, error)
	// End is the pod's final state when it ended, and why the terminal
	// ended; valid after Recv returned io.EOF. final is nil when the pod
	// still runs (the runner closed the terminal).
	End() (final *Report, reason string)
	Input(b []byte) error
	Resize(cols, rows int) error
	Close()
}

// TerminalOpener reaches a runner to open a pod's terminal: follow keeps it
// open for the pod's output (and input), otherwise the terminal carries
// only the scrollback and ends.
type TerminalOpener interface {
	OpenTerminal(ctx context.Context, orgID, runnerID, key string, follow bool) (Terminal, error)
}

// TerminalMode is what a caller opens a pod's terminal for.
type TerminalMode int

const (
	// TerminalSnapshot reads the scrollback, once.
	TerminalSnapshot TerminalMode = iota
	// TerminalFollow reads the scrollback, then the output until the pod
	// ends.
	TerminalFollow
	// TerminalAttach also types into the pod and resizes its terminal.
	TerminalAttach
)

// OpenTerminal opens the terminal of the caller's organization's pod key on
// its runner. Reading needs ScopePodsRead, attaching ScopePodsWrite. A
// pending pod has no terminal yet (CodeFailedPrecondition); a pod whose
// runner is not connected cannot be reached (CodeUnavailable).
func (s *Service) OpenTerminal(ctx context.Context, key string, mode TerminalMode) (Terminal, error) {
	scope := identity.ScopePodsRead
	if mode == TerminalAttach {
		scope = identity.ScopePodsWrite
	}
	c, err := identity.Require(ctx, scope)
	if err != nil {
		return nil, err
	}
	p, err := s.Store.FindPodByKey(ctx, c.OrgID, key)
	if err != nil {
		return nil, podNotFound(key, err)
	}
	if p.RunnerID == "" {
		if p.Status == StatusPending {
			return nil, apperr.FailedPrecondition("pod %q is pending (%s): it has no terminal until a runner runs it", key, p.Reason)
		}
		return nil, apperr.FailedPrecondition("pod %q never ran on a runner: it has no output", key)
	}
	if s.Terminals == nil {
		return nil, &apperr.Error{Code: apperr.CodeUnavailable, Message: "pod terminals are not available on this control plane"}
	}
	t, err := s.Terminals.OpenTerminal(ctx, c.OrgID, p.RunnerID, key, mode != TerminalSnapshot)
	if err != nil {
		return nil, fmt.Errorf("open the terminal of pod %q: %w", key, err)
	}
	return t, nil
}
