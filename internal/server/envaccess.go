package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/runyard/runyard/internal/api/apiauth"
	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/sshserver"
	"github.com/runyard/runyard/internal/store"
)

// environmentAccess is the service behind shells, commands, SFTP and port
// forwards in environments: sessions reach the runner through the fleet,
// and each one opened counts as activity on its environment. A session
// whose runner's stream another replica holds is opened there: HTTP
// surfaces are proxied before they get here, but an SSH connection has no
// request to proxy.
func (s *Server) environmentAccess(st store.Store, envSvc *environments.Service, proxy *replicaproxy.Proxy) *envaccess.Service {
	a := &envaccess.Service{
		Environments: st,
		Store:        st,
		UserKeys:     st,
		Opener:       &replicaproxy.SessionRelay{Local: s.fleet, Proxy: proxy},
		Now:          envSvc.Now,
		Active: func(ctx context.Context, orgID, envID, source string) {
			if err := envSvc.RecordActivity(ctx, orgID, envID, source); err != nil && !apperr.Is(err, apperr.CodeNotFound) {
				s.log.Warn("record activity of an environment session", "environment", envID, "err", err)
			}
		},
	}
	// An environment with a session open here is not stopped for
	// inactivity by this replica's sweep.
	envSvc.InUse = a.InUse
	return a
}

// sshListener is the SSH server and the socket it serves.
type sshListener struct {
	srv *sshserver.Server
	ln  net.Listener
}

// openSSH listens on --ssh-listen, so that a busy port fails the start, and
// loads the host key: a server key of the database, the same on every
// replica and after every restart.
func (s *Server) openSSH(ctx context.Context, st store.Store) error {
	if s.cfg.SSHListen == "" {
		return nil
	}
	seed, err := st.ServerKey(ctx, sshserver.HostKeyName)
	if err != nil {
		return fmt.Errorf("ssh host key: %w", err)
	}
	key, err := sshserver.HostKey(seed)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.SSHListen)
	if err != nil {
		return fmt.Errorf("--ssh-listen %s: %w", s.cfg.SSHListen, err)
	}
	s.ssh = &sshListener{ln: ln, srv: &sshserver.Server{Access: s.access, Audit: s.audit, HostKey: key, Log: s.log.With("surface", "ssh")}}
	return nil
}

// SSHAddr is the SSH server's address, "" without --ssh-listen.
func (s *Server) SSHAddr() string {
	if s.ssh == nil {
		return ""
	}
	return s.ssh.ln.Addr().String()
}

// serveSSH serves SSH until the returned stop is called (once or more).
func (s *Server) serveSSH() (stop func()) {
	if s.ssh == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.ssh.srv.Serve(ctx, s.ssh.ln); err != nil {
			s.log.Error("ssh server", "err", err)
		}
	}()
	s.log.Info("ssh server listening", "addr", s.SSHAddr(), "host_key", s.ssh.srv.Fingerprint())
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// refuseRelay answers a request to the replicas' session route that no
// replica signed: whoever sends it, with whatever credential, is refused
// (unauthenticated without a valid one, permission_denied with one).
func (s *Server) refuseRelay(auth apiauth.Authenticator) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, err := apiauth.Authenticate(r.Context(), auth, r.Header)
		if err == nil {
			if _, ok := identity.FromContext(ctx); ok {
				err = apperr.PermissionDenied("only another control-plane replica may open sessions here")
			} else {
				err = apperr.Unauthenticated("only another control-plane replica may open sessions here")
			}
		}
		jsonerr.Write(w, r, s.log, err)
	}
}
