// Package sdnotifytest is the receiving end of the notification protocol as
// systemd has it, for tests: a unixgram socket with SO_PASSCRED, so that each
// message carries its sender's PID as the kernel saw it, and descriptors
// passed along (a barrier's pipe) closed once the message is read.
package sdnotifytest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Message is one datagram.
type Message struct {
	// PID and UID are the sender's, from the socket credentials.
	PID, UID int
	// Fields are the KEY=VALUE lines, in order.
	Fields []string
	// FDs is how many descriptors came with it (closed already).
	FDs int
}

// Get returns the value of key's last field.
func (m Message) Get(key string) (string, bool) {
	val, ok := "", false
	for _, f := range m.Fields {
		if k, v, found := strings.Cut(f, "="); found && k == key {
			val, ok = v, true
		}
	}
	return val, ok
}

func (m Message) String() string {
	return fmt.Sprintf("pid %d: %s", m.PID, strings.Join(m.Fields, " | "))
}

// Listener is a notification socket.
type Listener struct {
	// Addr is what NOTIFY_SOCKET is to be set to.
	Addr string
	conn *net.UnixConn
}

// Listen opens a notification socket at addr: a path, or '@' and an
// abstract name.
func Listen(addr string) (*Listener, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		cerr := raw.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1)
		})
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("SO_PASSCRED: %w", err)
	}
	return &Listener{Addr: addr, conn: conn}, nil
}

// ErrTimeout is Read's error when no message came in time.
var ErrTimeout = errors.New("no notification message")

// Read returns the next message, waiting up to timeout (0: only one that is
// queued already).
func (l *Listener) Read(timeout time.Duration) (Message, error) {
	if timeout <= 0 {
		// Not less: a deadline that has passed when the read starts fails
		// it before it looks at the queue, so a queued message would be
		// missed.
		timeout = time.Millisecond
	}
	if err := l.conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return Message{}, err
	}
	buf := make([]byte, 4096)
	oob := make([]byte, syscall.CmsgSpace(syscall.SizeofUcred)+syscall.CmsgSpace(4*16))
	n, oobn, _, _, err := l.conn.ReadMsgUnix(buf, oob)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return Message{}, ErrTimeout
	}
	if err != nil {
		return Message{}, err
	}
	m := Message{PID: -1, UID: -1}
	cmsgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return Message{}, fmt.Errorf("control messages: %w", err)
	}
	for _, c := range cmsgs {
		if c.Header.Level != syscall.SOL_SOCKET {
			continue
		}
		switch c.Header.Type {
		case syscall.SCM_CREDENTIALS:
			if cred, err := syscall.ParseUnixCredentials(&c); err == nil {
				m.PID, m.UID = int(cred.Pid), int(cred.Uid)
			}
		case syscall.SCM_RIGHTS:
			// systemd closes what it does not store: that completes a
			// barrier.
			fds, _ := syscall.ParseUnixRights(&c)
			for _, fd := range fds {
				syscall.Close(fd)
			}
			m.FDs += len(fds)
		}
	}
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if line != "" {
			m.Fields = append(m.Fields, line)
		}
	}
	return m, nil
}

// Close closes the socket (and removes a path socket's file).
func (l *Listener) Close() error {
	err := l.conn.Close()
	if strings.HasPrefix(l.Addr, "/") {
		os.Remove(l.Addr)
	}
	return err
}
