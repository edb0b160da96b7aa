// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): newline-separated KEY=VALUE fields in one datagram to the
// unix socket named by $NOTIFY_SOCKET, a path or, beginning with '@', a name
// in the abstract namespace. The manager learns the sender's PID from the
// socket's credentials, so only the process itself (or, with
// NotifyAccess=all, any process of the unit) can speak for it.
//
// It is written here rather than imported: the protocol is one sendmsg, and
// the barrier (a pipe's write end passed along, which the manager closes
// once it has handled every earlier message) is the only part that needs
// care.
package sdnotify

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"
)

// EnvSocket is the variable the service manager names its socket in.
const EnvSocket = "NOTIFY_SOCKET"

// Notifier sends to one service manager's socket. A nil *Notifier is valid
// and sends nothing: the process does not run under a manager that listens.
type Notifier struct {
	addr string
}

// New returns a Notifier for the socket address addr (an absolute path, or
// '@' and an abstract name); nil for "".
func New(addr string) (*Notifier, error) {
	switch {
	case addr == "":
		return nil, nil
	case strings.HasPrefix(addr, "@") && len(addr) > 1, strings.HasPrefix(addr, "/"):
		return &Notifier{addr: addr}, nil
	}
	return nil, fmt.Errorf("%s=%q: want an absolute path or an abstract name beginning with '@'", EnvSocket, addr)
}

// Take returns the Notifier of $NOTIFY_SOCKET and removes the variable from
// this process's environment, as sd_notify's unset_environment does: the
// processes this one starts (a service's commands, an agent) would otherwise
// inherit it and could tell the manager things about this unit. Env gives
// it back to a process that is to speak for the unit.
func Take() (*Notifier, error) {
	addr, ok := os.LookupEnv(EnvSocket)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(EnvSocket)
	return New(addr)
}

// Env is the environment entry that hands the socket to a process that
// speaks for the unit next (nil for a nil Notifier).
func (n *Notifier) Env() []string {
	if n == nil {
		return nil
	}
	return []string{EnvSocket + "=" + n.addr}
}

// Addr is the socket's address, "" for a nil Notifier.
func (n *Notifier) Addr() string {
	if n == nil {
		return ""
	}
	return n.addr
}

// Send sends fields ("READY=1", "STATUS=connected", "MAINPID=42") as one
// message. A line break inside a field would start another field, so it
// becomes a space.
func (n *Notifier) Send(fields ...string) error {
	if n == nil || len(fields) == 0 {
		return nil
	}
	clean := make([]string, len(fields))
	for i, f := range fields {
		clean[i] = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(f)
	}
	return n.send([]byte(strings.Join(clean, "\n")), nil)
}

// Barrier returns once the manager has handled every message this process
// sent before it, or after timeout (an error then): it passes the write end
// of a pipe with BARRIER=1, and the manager closes it after handling the
// message (as every descriptor it is sent and does not keep), which ends
// the read end. A step that must not happen before the manager knows, such
// as letting the old main process exit after MAINPID=, waits for it.
func (n *Notifier) Barrier(timeout time.Duration) error {
	if n == nil {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("notify barrier: %w", err)
	}
	defer r.Close()
	err = n.send([]byte("BARRIER=1"), syscall.UnixRights(int(w.Fd())))
	w.Close()
	if err != nil {
		return err
	}
	if err := r.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("notify barrier: %w", err)
	}
	var b [1]byte
	for {
		_, err := r.Read(b[:])
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("notify barrier: the service manager did not answer within %s", timeout)
		case err != nil:
			return fmt.Errorf("notify barrier: %w", err)
		}
	}
}

// SendSync is Send, then Barrier.
func (n *Notifier) SendSync(timeout time.Duration, fields ...string) error {
	if err := n.Send(fields...); err != nil {
		return err
	}
	return n.Barrier(timeout)
}

func (n *Notifier) send(msg, oob []byte) error {
	// A socket of its own for each message, unconnected (Go's net package
	// sends no control message on a connected datagram socket). The
	// syscall package maps a leading '@' to the abstract namespace.
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr, err)
	}
	defer syscall.Close(fd)
	if err := syscall.Sendmsg(fd, msg, oob, &syscall.SockaddrUnix{Name: n.addr}, syscall.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("notify %s: %w", n.addr, err)
	}
	return nil
}
