package server

import (
	"context"
	"net/http"

	"github.com/runyard/runyard/internal/api/authhttp"
	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/users"
)

// mountSSO serves single sign-on with the OpenID provider of --oidc-issuer
// (internal/api/oidclogin) when one is configured: users are provisioned by
// users.Service and signed in by the browser sessions' service, whose
// cookie authhttp sets. Discovery starts with Serve and is retried, so the
// server starts while the provider is down.
func (s *Server) mountSSO(mux *http.ServeMux, st store.Store) {
	if !s.cfg.SSO.Enabled() {
		oidclogin.MountDisabled(mux)
		return
	}
	s.sso = oidclogin.New(s.cfg.SSO, oidclogin.Deps{
		States: st, Users: provisioner{s.users}, Sessions: sessionIssuer{s.signIns, s.secureCookies},
		Orgs: st, Members: st, Audit: s.audit, PublicURL: s.PublicURL, Log: s.log,
		Limit: s.signIns.AllowSignIn,
	})
	s.sso.Mount(mux)
	s.log.Info("single sign-on enabled", "issuer", s.cfg.SSO.Issuer, "client_id", s.cfg.SSO.ClientID,
		"callback", s.PublicURL()+sso.CallbackPath, "organization", s.cfg.SSO.Organization)
}

// startSSO starts the provider's discovery; it ends with ctx.
func (s *Server) startSSO(ctx context.Context) {
	if s.sso != nil {
		s.sso.Start(ctx)
	}
}

// provisioner finds or creates the user who signs in.
type provisioner struct{ svc *users.Service }

func (p provisioner) Provision(ctx context.Context, email, name, orgID string, role identity.Role) (*users.User, error) {
	u, _, err := p.svc.Provision(ctx, email, name, orgID, role)
	return u, err
}

// sessionIssuer issues the browser session of a user who signed in, with
// the cookie of a password sign-in.
type sessionIssuer struct {
	svc    *sessions.Service
	secure func() bool
}

func (i sessionIssuer) SignIn(w http.ResponseWriter, r *http.Request, userID, orgID string) error {
	iss, err := i.svc.SignInUser(r.Context(), userID, orgID, authhttp.Meta(r))
	if err != nil {
		return err
	}
	authhttp.SetCookie(w, iss, i.secure())
	return nil
}
