// Package sshserver is the control plane's SSH server (runyard server
// --ssh-listen): the SSH adapter over envaccess, as the exec WebSocket is
// the HTTP one. The SSH user is an environment's ID and the key one of the
// keys its spec lists (envaccess.Service.SSHLogin); each channel is one
// envaccess session on the environment's runner, reached over the runner's
// own outbound connection:
//
//   - a session channel's shell or exec runs in a PTY (after pty-req) or
//     with pipes, with window-change, signal and env requests, and returns
//     exit-status (exit-signal after a signal);
//   - its sftp subsystem is an SFTP server (github.com/pkg/sftp) that runs
//     on the runner, in the environment's checkout: the control plane only
//     relays the protocol's bytes, so files never pass through its disk;
//   - a direct-tcpip channel (ssh -L, editors' port forwards) is a TCP
//     connection the runner dials on the environment's loopback.
//
// Each channel opened is an audit entry (surface ssh). The host key is a
// server key of the database (store.KeyStore), so it survives restarts and
// is the same on every replica.
package sshserver

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/rawconn"
)

// HostKeyName is the server key (store.KeyStore) the host key derives from.
const HostKeyName = "ssh-host-key-ed25519"

// HostKey returns the ed25519 host key whose seed is key (32 bytes).
func HostKey(seed []byte) (ssh.Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("ssh host key: the seed has %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(seed))
}

// Server serves SSH connections.
type Server struct {
	Access  *envaccess.Service
	Audit   *audit.Service
	HostKey ssh.Signer
	Log     *slog.Logger
	// LoginBurst failed logins from one address, then one more every
	// LoginInterval (zero: DefaultLoginBurst, DefaultLoginInterval); see
	// logins.go.
	LoginBurst    int
	LoginInterval time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	failed failures

	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// handshakeTimeout bounds a connection's authentication.
const handshakeTimeout = 30 * time.Second

// Serve accepts connections on ln until ctx ends, then closes every
// connection and waits for them.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.conns = map[net.Conn]struct{}{}
	s.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		s.mu.Lock()
		s.closed = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	defer stop()
	defer s.wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("ssh: accept: %w", err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serveConn(ctx, c)
		}()
	}
}

func (s *Server) serveConn(ctx context.Context, nc net.Conn) {
	ip := clientIP(nc.RemoteAddr())
	if !s.loginAllowed(ip) {
		return // too many failed logins from ip lately
	}
	var (
		login   *envaccess.Login
		refused *envaccess.RefusedLogin // the last key refused
		version string
	)
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(cm ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			version = string(cm.ClientVersion())
			l, err := s.Access.SSHLogin(ctx, cm.User(), key)
			if err != nil {
				if !errors.As(err, &refused) {
					s.Log.Error("ssh login", "err", err)
				}
				return nil, errors.New("permission denied")
			}
			login = l
			return &ssh.Permissions{}, nil
		},
		ServerVersion: "SSH-2.0-runyard",
	}
	cfg.AddHostKey(s.HostKey)
	_ = nc.SetDeadline(time.Now().Add(handshakeTimeout))
	conn, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		// A failed login, or a client that went away (perhaps after a
		// key was refused, as OpenSSH does when it has no other).
		if login == nil && refused != nil {
			s.loginFailed(ctx, ip, version, refused)
		}
		return
	}
	_ = nc.SetDeadline(time.Time{})
	defer conn.Close()
	go ssh.DiscardRequests(reqs)
	c := &sshConn{s: s, conn: conn, login: login, ip: ip, version: string(conn.ClientVersion())}
	var wg sync.WaitGroup
	defer wg.Wait()
	for nch := range chans {
		switch nch.ChannelType() {
		case "session":
			ch, reqs, err := nch.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() { defer wg.Done(); c.session(ctx, ch, reqs) }()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); c.directTCPIP(ctx, nch) }()
		default:
			_ = nch.Reject(ssh.UnknownChannelType, "runyard serves session and direct-tcpip channels only")
		}
	}
}

func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// sshConn is one logged-in connection.
type sshConn struct {
	s       *Server
	conn    *ssh.ServerConn
	login   *envaccess.Login
	ip      string
	version string
}

// open opens a session of the login, recorded in the audit log as method.
func (c *sshConn) open(ctx context.Context, method string, req envaccess.Request) (envaccess.Stream, error) {
	ctx = identity.NewContext(ctx, c.login.Caller)
	var d *audit.Draft
	if c.s.Audit != nil {
		ctx, d = audit.Begin(ctx, audit.SurfaceSSH, method, "RESOURCE_TYPE_ENVIRONMENT", c.ip, c.version)
		audit.SetObject(ctx, "RESOURCE_TYPE_ENVIRONMENT", c.login.EnvironmentID)
		d.SetCaller(c.login.Caller)
	}
	st, err := c.s.Access.OpenAs(ctx, c.login, req, "ssh")
	if d != nil {
		outcome := audit.OutcomeOK
		if err != nil {
			outcome = string(apperr.CodeOf(err))
		}
		if ferr := c.s.Audit.Finish(ctx, d, outcome); ferr != nil {
			c.s.Log.Error("audit log", "err", ferr)
		}
	}
	return st, err
}

// publicMessage is what an SSH client may read of err.
func publicMessage(err error) string {
	if e := apperr.As(err); e != nil && e.Code != apperr.CodeInternal {
		return e.Public()
	}
	return "internal error"
}

// session serves one session channel: its requests until shell, exec or
// subsystem starts the session, and window-change and signal after.
func (c *sshConn) session(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var (
		req     = envaccess.Request{Kind: envaccess.KindExec, Env: map[string]string{}}
		started chan envaccess.Stream // the stream, once one opened
	)
	for r := range reqs {
		ok := false
		switch r.Type {
		case "pty-req":
			var p struct {
				Term          string
				Cols, Rows    uint32
				Width, Height uint32
				Modes         string
			}
			if ssh.Unmarshal(r.Payload, &p) == nil && started == nil {
				req.TTY, req.Cols, req.Rows = true, int(p.Cols), int(p.Rows)
				if p.Term != "" {
					req.Env["TERM"] = p.Term
				}
				ok = true
			}
		case "env":
			var p struct{ Name, Value string }
			// OpenSSH sends LANG and LC_* by default; a variable the
			// session would refuse is refused alone, here.
			if ssh.Unmarshal(r.Payload, &p) == nil && started == nil && len(req.Env) < 32 && envName(p.Name) && len(p.Value) <= 4096 && !strings.ContainsRune(p.Value, 0) {
				req.Env[p.Name] = p.Value
				ok = true
			}
		case "shell", "exec", "subsystem":
			if started != nil {
				break
			}
			method := "ssh " + r.Type
			switch r.Type {
			case "exec":
				var p struct{ Command string }
				if ssh.Unmarshal(r.Payload, &p) != nil {
					break
				}
				req.Command = p.Command
			case "subsystem":
				var p struct{ Name string }
				if ssh.Unmarshal(r.Payload, &p) != nil || p.Name != "sftp" {
					break
				}
				req = envaccess.Request{Kind: envaccess.KindSFTP}
				method = "ssh sftp"
			}
			if r.Type == "subsystem" && req.Kind != envaccess.KindSFTP || r.Type == "exec" && req.Command == "" {
				break
			}
			st, err := c.open(ctx, method, req)
			if err != nil {
				// Accepted, so that the client shows why, then ended as
				// OpenSSH ends a session it could not start.
				if r.WantReply {
					_ = r.Reply(true, nil)
				}
				fmt.Fprintf(ch.Stderr(), "runyard: %s\r\n", publicMessage(err))
				_ = sendExit(ch, 255, "")
				return
			}
			started = make(chan envaccess.Stream, 1)
			started <- st
			if r.WantReply {
				_ = r.Reply(true, nil)
			}
			go func() {
				c.pipe(ch, st)
				// The session's end closes the channel, which ends reqs.
				ch.Close()
			}()
			continue
		case "window-change":
			var p struct{ Cols, Rows, Width, Height uint32 }
			if ssh.Unmarshal(r.Payload, &p) == nil && started != nil {
				st := <-started
				started <- st
				_ = st.Resize(int(p.Cols), int(p.Rows))
				ok = true
			}
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(r.Payload, &p) == nil && started != nil {
				st := <-started
				started <- st
				ok = st.Signal(p.Signal) == nil
			}
		}
		if r.WantReply {
			_ = r.Reply(ok, nil)
		}
	}
	if started != nil {
		st := <-started
		st.Close()
	}
}

// pumpInput copies what the client sends on ch into the session's stdin
// until either side ends; the client's EOF closes stdin.
func pumpInput(ch io.Reader, st envaccess.Stream) {
	buf := make([]byte, 32<<10)
	for {
		n, err := ch.Read(buf)
		if n > 0 {
			if st.Write(buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				_ = st.CloseStdin()
			}
			return
		}
	}
}

// pipe relays a session's channel and stream until the stream ends, then
// sends the exit status.
func (c *sshConn) pipe(ch ssh.Channel, st envaccess.Stream) {
	defer st.Close()
	go pumpInput(ch, st)
	for {
		f, err := st.Recv()
		if err != nil {
			break
		}
		w := io.Writer(ch)
		if f.Stderr {
			w = ch.Stderr()
		}
		if _, err := w.Write(f.Data); err != nil {
			return
		}
	}
	x := st.Exit()
	_ = ch.CloseWrite()
	switch {
	case x.Signal != "":
		_ = sendExit(ch, x.Code, x.Signal)
	case x.HasCode:
		_ = sendExit(ch, x.Code, "")
	case x.Err != "":
		fmt.Fprintf(ch.Stderr(), "runyard: %s\r\n", x.Err)
		_ = sendExit(ch, 255, "")
	default:
		// An SFTP session has no status; 0 is what OpenSSH's sends.
		_ = sendExit(ch, 0, "")
	}
}

// envName says name is a variable name a session takes.
func envName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// sendExit sends exit-status, or exit-signal when sig names one.
func sendExit(ch ssh.Channel, code int, sig string) error {
	if sig != "" {
		_, err := ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Message    string
			Lang       string
		}{Signal: sig}))
		return err
	}
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(code))
	_, err := ch.SendRequest("exit-status", false, b)
	return err
}

// directTCPIP serves one direct-tcpip channel (ssh -L): a TCP connection to
// a port on the environment's loopback.
func (c *sshConn) directTCPIP(ctx context.Context, nch ssh.NewChannel) {
	var p struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if ssh.Unmarshal(nch.ExtraData(), &p) != nil {
		_ = nch.Reject(ssh.ConnectionFailed, "malformed direct-tcpip request")
		return
	}
	switch strings.ToLower(p.Host) {
	case "localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost":
	default:
		_ = nch.Reject(ssh.Prohibited, "only the environment's own ports can be forwarded: use localhost as the host")
		return
	}
	st, err := c.open(ctx, "ssh direct-tcpip", envaccess.Request{Kind: envaccess.KindTCP, Port: int(p.Port), Raw: true})
	if err != nil {
		_ = nch.Reject(ssh.ConnectionFailed, publicMessage(err))
		return
	}
	defer st.Close()
	ch, reqs, err := nch.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	go ssh.DiscardRequests(reqs)
	if conn, ok := envaccess.Raw(st); ok {
		// The runner's own connection to the port: copied as it is, each
		// direction's end passed on as a half-close.
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := io.Copy(conn, ch); err == nil {
				_ = rawconn.CloseWrite(conn)
			} else {
				st.Close()
			}
		}()
		if _, err := io.Copy(ch, conn); err != nil {
			return
		}
		_ = ch.CloseWrite()
		<-done
		return
	}
	go pumpInput(ch, st)
	for {
		f, err := st.Recv()
		if err != nil {
			break
		}
		if _, err := ch.Write(f.Data); err != nil {
			return
		}
	}
	_ = ch.CloseWrite()
}

// Fingerprint is the host key's SHA-256 fingerprint, for the log and for
// users checking it on their first connection.
func (s *Server) Fingerprint() string { return ssh.FingerprintSHA256(s.HostKey.PublicKey()) }
