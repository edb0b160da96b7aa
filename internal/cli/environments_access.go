package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/rawconn"
)

// This file is `runyard environments exec|ssh|port-forward|ssh-config`:
// ways into an environment, through the control plane's WebSockets
// (internal/api/rest/envaccess.go) and its SSH server.

// exitStatus is the exit status of a command run in an environment: the
// CLI exits with it and says nothing more.
type exitStatus struct{ code int }

func (e *exitStatus) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newEnvironmentsExecCmd(g *globals) *cobra.Command {
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec ENVIRONMENT_ID -- COMMAND [ARG...]",
		Short: "Run a command in an environment",
		Long: `Run a command in an environment's checkout, with its variables and secrets,
and exit with the command's exit status (kubectl exec's behaviour). Its output
comes back on stdout and stderr as it is written. -i sends this process's stdin
to the command; -t runs it in a terminal (stdout and stderr then come together,
and this terminal goes raw so every key reaches the command). The command runs
on the environment's runner; when runyard exits (Ctrl-C, a lost connection),
the command and everything it started are killed.`,
		Example: `  runyard environments exec $ENVIRONMENT_ID -- go test ./...
  echo hello | runyard environments exec -i $ENVIRONMENT_ID -- wc -c
  runyard environments exec -it $ENVIRONMENT_ID -- vim README.md`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef("exec needs an ENVIRONMENT_ID, then -- and the command")
			}
			if len(args) < 2 {
				return usagef("exec needs a command after the environment: runyard environments exec %s -- COMMAND", args[0])
			}
			if cmd.ArgsLenAtDash() != 1 {
				return usagef("put -- between the environment and the command: runyard environments exec %s -- %s", args[0], strings.Join(args[1:], " "))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.execIn(cmd.Context(), args[0], args[1:], stdin, tty, cmd.InOrStdin())
		},
	}
	cmd.Flags().BoolVarP(&stdin, "stdin", "i", false, "send stdin to the command")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "run the command in a terminal")
	return cmd
}

func newEnvironmentsSSHCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ssh ENVIRONMENT_ID [-- COMMAND [ARG...]]",
		Short: "Open a shell in an environment",
		Long: `Open an interactive shell (the runner user's login shell) in an environment's
checkout, with its variables and secrets, in a terminal that follows this
one's size. Exit the shell (or close the connection) to leave: nothing keeps
running. With a command after --, run it in a terminal instead of a shell.
This goes through the control plane's API; for an SSH client (scp, sftp,
editors) see runyard environments ssh-config.`,
		Example: `  runyard environments ssh $ENVIRONMENT_ID
  runyard environments ssh $ENVIRONMENT_ID -- htop`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usagef("ssh needs an ENVIRONMENT_ID")
			}
			if len(args) > 1 && cmd.ArgsLenAtDash() != 1 {
				return usagef("put -- between the environment and the command")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			tty := false
			if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				tty = true
			}
			return g.execIn(cmd.Context(), args[0], args[1:], true, tty, in)
		},
	}
	return cmd
}

// envRestClient is the REST client of the organization the credential
// belongs to.
func (g *globals) envRestClient(ctx context.Context) (*restClient, error) {
	c, err := g.clients()
	if err != nil {
		return nil, err
	}
	who, err := c.identity.GetAuthenticatedIdentity(ctx, connect.NewRequest(&gitpodv1.GetAuthenticatedIdentityRequest{}))
	if err != nil {
		return nil, err
	}
	org, err := c.orgs.GetOrganization(ctx, connect.NewRequest(&gitpodv1.GetOrganizationRequest{OrganizationId: who.Msg.GetOrganizationId()}))
	if err != nil {
		return nil, err
	}
	return g.restClient(org.Msg.GetOrganization().GetName())
}

// accessEvent is a text message of the exec and port-forward WebSockets
// (rest.accessEvent).
type accessEvent struct {
	Type     string `json:"type"`
	Cols     int    `json:"cols,omitempty"`
	Rows     int    `json:"rows,omitempty"`
	Signal   string `json:"signal,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
}

// dialAccess opens the WebSocket of path?query; an error answer is returned
// as the server's error.
func (c *restClient) dialAccess(ctx context.Context, path string, q url.Values) (*websocket.Conn, error) {
	return c.dialAccessVia(ctx, path, q, c.hc.Transport)
}

// dialAccessBatched is dialAccess for a port forward: it returns the
// WebSocket's connection too, to gather each message's writes (batchConn).
// Without an *http.Transport to dial with it gathers nothing.
func (c *restClient) dialAccessBatched(ctx context.Context, path string, q url.Values) (*websocket.Conn, *batchConn, error) {
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		ws, err := c.dialAccess(ctx, path, q)
		return ws, nil, err
	}
	tr = tr.Clone()
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	var bc *batchConn
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc = &batchConn{Conn: conn}
		return bc, nil
	}
	ws, err := c.dialAccessVia(ctx, path, q, tr)
	if err != nil || bc == nil {
		return ws, nil, err
	}
	return ws, bc, nil
}

// batchConn gathers what is written to it between hold and flush into one
// write. A WebSocket client masks what it sends, and the WebSocket library
// masks a message in its 4 KiB write buffer and writes every 4 KiB: a
// 256 KiB chunk of a forwarded connection was 64 syscalls and TCP
// segments, the most CPU of the CLI's part of a port forward.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// holdWrites gathers the writes until flush; anything written meanwhile
// (a pong, from another goroutine) goes out with them, in order.
func (c *batchConn) holdWrites() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// flush writes what was gathered and stops gathering.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

func (c *restClient) dialAccessVia(ctx context.Context, path string, q url.Values, tr http.RoundTripper) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(c.base, "http") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	hdr := http.Header{}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	dctx, cancel := context.WithTimeout(ctx, c.hc.Timeout)
	defer cancel()
	conn, res, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		if res != nil && res.StatusCode != http.StatusSwitchingProtocols {
			b, _ := io.ReadAll(io.LimitReader(res.Body, maxResponse))
			return nil, restError(res.StatusCode, b)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unreachable(err)
	}
	conn.SetReadLimit(maxResponse)
	return conn, nil
}

func (g *globals) execIn(ctx context.Context, envID string, argv []string, withStdin, tty bool, stdin io.Reader) error {
	c, err := g.envRestClient(ctx)
	if err != nil {
		return err
	}
	fd, interactive := 0, false
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd, interactive = int(f.Fd()), true
	}
	q := url.Values{}
	for _, a := range argv {
		q.Add("command", a)
	}
	if tty {
		q.Set("tty", "1")
		if interactive {
			if w, h, err := term.GetSize(fd); err == nil {
				q.Set("cols", strconv.Itoa(w))
				q.Set("rows", strconv.Itoa(h))
			}
		}
		if t := os.Getenv("TERM"); t != "" {
			q.Set("term", t)
		}
	}
	conn, err := c.dialAccess(ctx, "/environments/"+url.PathEscape(envID)+"/exec", q)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	send := func(ev accessEvent) error {
		b, _ := json.Marshal(ev)
		return conn.Write(ctx, websocket.MessageText, b)
	}
	if tty && interactive {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer term.Restore(fd, old)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-winch:
					if w, h, err := term.GetSize(fd); err == nil {
						_ = send(accessEvent{Type: "resize", Cols: w, Rows: h})
					}
				}
			}
		}()
	}
	if withStdin {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if conn.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
						return
					}
				}
				if err != nil {
					_ = send(accessEvent{Type: "eof"})
					return
				}
			}
		}()
	} else {
		// Nothing to read: the command's stdin is closed at once.
		_ = send(accessEvent{Type: "eof"})
	}
	var end *accessEvent
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			break
		}
		if typ == websocket.MessageBinary {
			if len(b) == 0 {
				continue
			}
			w := g.stdout
			if b[0] == 2 {
				w = g.stderr
			}
			if _, err := w.Write(b[1:]); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			continue
		}
		var ev accessEvent
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		switch ev.Type {
		case "exit":
			end = &ev
		case "error":
			fmt.Fprintf(g.stderr, "runyard: %s\n", ev.Error)
		}
	}
	switch {
	case end == nil && ctx.Err() != nil:
		return nil
	case end == nil:
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("lost the connection to environment %s; the command was stopped", envID)}
	case end.ExitCode == nil:
		return &apperr.Error{Code: apperr.CodeUnavailable, Message: fmt.Sprintf("the session in environment %s ended: %s", envID, end.Reason)}
	case *end.ExitCode != 0:
		return &exitStatus{code: *end.ExitCode}
	}
	return nil
}

func newEnvironmentsPortForwardCmd(g *globals) *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "port-forward ENVIRONMENT_ID [LOCAL_PORT:]REMOTE_PORT...",
		Short: "Forward local ports to ports in an environment",
		Long: `Listen on LOCAL_PORT on this machine (--address, 127.0.0.1 by default) and
forward every connection to REMOTE_PORT on the environment's loopback, through
the control plane and the environment's runner (it needs no inbound port).
Each connection is its own stream, so many may be open at once; WebSockets and
any other TCP protocol pass through. LOCAL_PORT 0, or REMOTE_PORT alone, picks
a free port and prints it. Runs until Ctrl-C.`,
		Example: `  runyard environments port-forward $ENVIRONMENT_ID 8080:3000
  runyard environments port-forward $ENVIRONMENT_ID 5432 8080:80`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef("port-forward needs an ENVIRONMENT_ID and at least one [LOCAL_PORT:]REMOTE_PORT")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			type fwd struct{ local, remote int }
			var fwds []fwd
			for _, a := range args[1:] {
				l, r, ok := strings.Cut(a, ":")
				if !ok {
					l, r = "0", a
				}
				lp, err1 := strconv.Atoi(l)
				rp, err2 := strconv.Atoi(r)
				if err1 != nil || err2 != nil || lp < 0 || lp > 65535 || rp < 1 || rp > 65535 {
					return usagef("%q: want [LOCAL_PORT:]REMOTE_PORT with ports between 1 and 65535 (LOCAL_PORT 0: any free one)", a)
				}
				fwds = append(fwds, fwd{lp, rp})
			}
			c, err := g.envRestClient(cmd.Context())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, len(fwds))
			for _, f := range fwds {
				ln, err := net.Listen("tcp", net.JoinHostPort(address, strconv.Itoa(f.local)))
				if err != nil {
					return &apperr.Error{Code: apperr.CodeFailedPrecondition, Message: fmt.Sprintf("listen on %s port %d: %v", address, f.local, err)}
				}
				defer ln.Close()
				fmt.Fprintf(g.stdout, "Forwarding from %s -> %d\n", ln.Addr(), f.remote)
				wg.Add(1)
				go func(ln net.Listener, remote int) {
					defer wg.Done()
					errs <- c.forward(ctx, ln, args[0], remote, g.stderr)
				}(ln, f.remote)
			}
			go func() { <-ctx.Done(); wg.Wait() }()
			select {
			case <-ctx.Done():
				return nil
			case err := <-errs:
				return err
			}
		},
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1", "the local address to listen on")
	return cmd
}

// forward serves ln until ctx ends: each connection goes to port remote of
// the environment over a WebSocket of its own.
func (c *restClient) forward(ctx context.Context, ln net.Listener, envID string, remote int, stderr io.Writer) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	path := "/environments/" + url.PathEscape(envID) + "/port-forward"
	q := url.Values{"port": {strconv.Itoa(remote)}}
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		go func() {
			defer conn.Close()
			if !c.noRaw.Load() {
				rc, err := c.dialPortRaw(ctx, path, q)
				if err == nil {
					stop := context.AfterFunc(ctx, func() { rc.Close(); conn.Close() })
					defer stop()
					_ = rawconn.Pipe(conn, rc)
					return
				}
				var se *rawconn.StatusError
				if errors.As(err, &se) && !rawRefused(se.StatusCode) {
					fmt.Fprintf(stderr, "runyard: forward a connection to port %d: %s\n", remote, errorMessage(restError(se.StatusCode, se.Body)))
					return
				}
				if se != nil || errors.Is(err, errNoRaw) {
					// A control plane without the upgrade (an older one),
					// something between that refuses it, or a proxy:
					// WebSockets from now on. Another failure (the
					// network) tries the WebSocket for this connection.
					c.noRaw.Store(true)
				}
			}
			ws, bc, err := c.dialAccessBatched(ctx, path, q)
			if err != nil {
				fmt.Fprintf(stderr, "runyard: forward a connection to port %d: %s\n", remote, errorMessage(err))
				return
			}
			defer ws.CloseNow()
			pipeWebSocket(ctx, ws, bc, conn.(*net.TCPConn))
		}()
	}
}

// dialPortRaw opens a port forward on an upgraded connection of its own
// (rawconn): the connection's bytes are the forwarded connection's, with
// no WebSocket framing or masking, and on plain TCP each process on the way
// splices them from one socket to the other. It fails with a
// *rawconn.StatusError when the control plane answers otherwise, and
// without trying when a proxy is configured for the server (the upgrade
// dials directly).
func (c *restClient) dialPortRaw(ctx context.Context, path string, q url.Values) (net.Conn, error) {
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		return nil, errNoRaw
	}
	u := c.base + path + "?" + q.Encode()
	if tr.Proxy != nil {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		if p, err := tr.Proxy(req); err != nil || p != nil {
			return nil, errNoRaw
		}
	}
	hdr := http.Header{}
	if c.token != "" {
		hdr.Set("Authorization", "Bearer "+c.token)
	}
	dctx, cancel := context.WithTimeout(ctx, c.hc.Timeout)
	defer cancel()
	return rawconn.Dial(dctx, u, hdr, rawconn.ProtocolTCP, tr.TLSClientConfig)
}

// errNoRaw: this client cannot dial an upgraded connection (a proxy is
// configured for the server, or no http.Transport to take TLS settings
// from).
var errNoRaw = errors.New("no upgraded connection through a proxy")

// rawRefused reports whether a status answering a port forward's upgrade
// means the upgrade itself was refused (an older control plane wants a
// WebSocket; a proxy between does not pass it on), not the forward.
func rawRefused(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUpgradeRequired,
		http.StatusNotImplemented, http.StatusBadGateway:
		return true
	}
	return false
}

// pipeWebSocket copies a TCP connection and a port-forward WebSocket into
// each other until both directions ended. bc, when not nil, is the
// WebSocket's connection: each message goes out in one write.
func pipeWebSocket(ctx context.Context, ws *websocket.Conn, bc *batchConn, conn *net.TCPConn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if bc != nil {
		// A flush is outside ws.Write, which would give up when ctx
		// ends: closing the connection ends a flush that blocks.
		stop := context.AfterFunc(ctx, func() { bc.Conn.Close() })
		defer stop()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Large reads make few messages: each costs a hop through the
		// control plane and the runner.
		buf := make([]byte, 256<<10)
		for {
			n, err := conn.Read(buf)
			if n > 0 {
				if bc != nil {
					bc.holdWrites()
				}
				err := ws.Write(ctx, websocket.MessageBinary, buf[:n])
				if bc != nil {
					if ferr := bc.flush(); err == nil {
						err = ferr
					}
				}
				if err != nil {
					cancel()
					return
				}
			}
			if err != nil {
				b, _ := json.Marshal(accessEvent{Type: "eof"})
				_ = ws.Write(ctx, websocket.MessageText, b)
				return
			}
		}
	}()
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			// The other side is gone: so is the connection.
			conn.Close()
			break
		}
		if typ == websocket.MessageBinary {
			if _, err := conn.Write(b); err != nil {
				cancel()
				break
			}
			continue
		}
		var ev accessEvent
		if json.Unmarshal(b, &ev) == nil && ev.Type == "eof" {
			_ = conn.CloseWrite()
		}
	}
	<-done
	ws.Close(websocket.StatusNormalClosure, "")
}

func newEnvironmentsSSHConfigCmd(g *globals) *cobra.Command {
	var host string
	var port int
	cmd := &cobra.Command{
		Use:   "ssh-config",
		Short: "Print the ~/.ssh/config block for the environments",
		Long: `Print a ~/.ssh/config block with one host per running environment of your
organization, for the control plane's SSH server (runyard server
--ssh-listen): the user is the environment's ID, and you log in with a key the
environment's spec lists (spec.sshPublicKeys). Editors (VS Code Remote-SSH,
JetBrains Gateway), scp and sftp then reach an environment as
ENVIRONMENT_ID.runyard (and NAME.runyard for a named one).`,
		Example: `  runyard environments ssh-config >> ~/.ssh/config
  runyard environments ssh-config --ssh-host ssh.example.com --ssh-port 22`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := g.endpoint(); err != nil {
				return err
			}
			if host == "" {
				u, err := url.Parse(g.server)
				if err != nil {
					return usagef("the server URL %q: %v", g.server, err)
				}
				host = u.Hostname()
			}
			if port < 1 || port > 65535 {
				return usagef("--ssh-port %d: want a port between 1 and 65535", port)
			}
			token := g.ep.token
			hc := g.httpClient(60 * time.Second)
			envs := gitpodv1connect.NewEnvironmentServiceClient(hc, strings.TrimRight(g.server, "/"), connect.WithInterceptors(bearer(token), fieldErrors()))
			var all []*gitpodv1.Environment
			tokenPage := ""
			for range 1000 {
				res, err := envs.ListEnvironments(cmd.Context(), connect.NewRequest(&gitpodv1.ListEnvironmentsRequest{
					Pagination: &gitpodv1.PaginationRequest{Token: tokenPage, PageSize: 100},
				}))
				if err != nil {
					return err
				}
				all = append(all, res.Msg.GetEnvironments()...)
				if tokenPage = res.Msg.GetPagination().GetNextToken(); tokenPage == "" {
					break
				}
			}
			names := map[string]int{}
			for _, e := range all {
				names[e.GetMetadata().GetName()]++
			}
			fmt.Fprintf(g.stdout, "# runyard environments of %s (runyard environments ssh-config)\n", g.server)
			for _, e := range all {
				alias := e.GetId() + ".runyard"
				if n := e.GetMetadata().GetName(); n != "" && names[n] == 1 && sshAliasOK(n) {
					alias += " " + n + ".runyard"
				}
				fmt.Fprintf(g.stdout, "Host %s\n  HostName %s\n  Port %d\n  User %s\n", alias, host, port, e.GetId())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "ssh-host", "", "the SSH server's host (default: the control plane's host)")
	cmd.Flags().IntVar(&port, "ssh-port", 2222, "the SSH server's port (runyard server --ssh-listen)")
	return cmd
}

// sshAliasOK says a name can be an ssh_config host alias as it is.
func sshAliasOK(n string) bool {
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
