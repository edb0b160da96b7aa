package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/store"
)

// mountSSO serves single sign-on with the OpenID provider of --oidc-issuer
// (internal/api/oidclogin) when one is configured. Discovery starts with
// Serve and is retried, so the server starts while the provider is down.
func (s *Server) mountSSO(mux *http.ServeMux, st store.Store, users oidclogin.Users, sessions oidclogin.Sessions) error {
	if !s.cfg.SSO.Enabled() {
		return nil
	}
	if users == nil || sessions == nil {
		return errors.New("--oidc-issuer: single sign-on needs browser sessions and user provisioning, which this build lacks")
	}
	s.sso = oidclogin.New(s.cfg.SSO, oidclogin.Deps{
		States: st, Users: users, Sessions: sessions, Orgs: st, Members: st, Audit: s.audit,
		PublicURL: s.PublicURL, Log: s.log,
	})
	s.sso.Mount(mux)
	s.log.Info("single sign-on enabled", "issuer", s.cfg.SSO.Issuer, "client_id", s.cfg.SSO.ClientID,
		"callback", s.PublicURL()+"/auth/oidc/callback", "organization", s.cfg.SSO.Organization)
	return nil
}

// startSSO starts the provider's discovery; it ends with ctx.
func (s *Server) startSSO(ctx context.Context) {
	if s.sso != nil {
		s.sso.Start(ctx)
	}
}
