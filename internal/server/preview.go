package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/runyard/runyard/internal/api/previewhttp"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/preview"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/store"
)

// openPreview prepares preview URLs (--preview-domain): the service that
// signs browsers in to preview hosts, with a key every replica shares, and
// the handler that serves those hosts in front of everything else.
func (s *Server) openPreview(ctx context.Context, st store.Store, idSvc *identity.Service, proxy *replicaproxy.Proxy) error {
	p := s.preview
	p.Store, p.Access, p.Now = st, s.access, s.runners.Now
	p.Scheme = "http"
	if u, err := url.Parse(s.PublicURL()); err == nil {
		if u.Scheme == "https" {
			p.Scheme = "https"
		}
		// A domain without a port: preview URLs take the public URL's.
		p.Port = u.Port()
		if (u.Scheme == "https" && p.Port == "443") || (u.Scheme == "http" && p.Port == "80") {
			p.Port = ""
		}
	}
	if !p.Domain.Enabled() {
		return nil
	}
	key, err := st.ServerKey(ctx, preview.KeyName)
	if err != nil {
		return fmt.Errorf("preview signing key: %w", err)
	}
	p.Key = key
	if u, err := url.Parse(s.PublicURL()); err == nil && withinDomain(u.Host, p.Domain.String()) {
		// A preview page could then set cookies for the console's host.
		s.log.Warn("the console's host is inside --preview-domain: serve previews under a domain of their own (see docs/authorization.md)",
			"public_url", s.PublicURL(), "preview_domain", p.Domain.String())
	}
	s.previewHTTP = &previewhttp.Handler{
		Preview: p, Keys: idSvc, Proxy: proxy, Holds: s.fleet.Holds,
		ConsoleURL: s.PublicURL, Log: s.log.With("surface", "preview"),
	}
	s.log.Info("preview URLs", "domain", p.Domain.String(), "example", p.URL("ENVIRONMENT_ID", 3000))
	return nil
}

// withinDomain reports whether host (with an optional port) is domain or
// one of its subdomains, ports aside.
func withinDomain(host, domain string) bool {
	strip := func(h string) string {
		if x, _, err := net.SplitHostPort(h); err == nil {
			return x
		}
		return h
	}
	h, d := strings.ToLower(strip(host)), strings.ToLower(strip(domain))
	return h == d || strings.HasSuffix(h, "."+d)
}

// previewFirst sends requests for preview hosts to the preview handler and
// every other request to next: a preview host reaches nothing else of the
// control plane.
func (s *Server) previewFirst(next http.Handler) http.Handler {
	if s.previewHTTP == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.previewHTTP.Matches(r) {
			s.previewHTTP.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// PreviewURL is the preview URL of port in envID, "" without
// --preview-domain.
func (s *Server) PreviewURL(envID string, port int) string { return s.preview.URL(envID, int32(port)) }
