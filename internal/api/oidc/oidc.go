// Package oidc serves what a third party needs to verify the ID tokens of
// IdentityService.GetIDToken: the OpenID provider metadata
// (/.well-known/openid-configuration) and the signing keys
// (/.well-known/jwks.json). Both are public, as OIDC discovery requires.
package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/go-jose/go-jose/v4"

	"github.com/runyard/runyard/internal/api/jsonerr"
	"github.com/runyard/runyard/internal/identity"
)

// JWKSPath is where the keys that verify ID tokens are served.
const JWKSPath = "/.well-known/jwks.json"

// ConfigurationPath is the OpenID provider metadata, under the issuer.
const ConfigurationPath = "/.well-known/openid-configuration"

// Keys gives the public keys of ID tokens (identity.Service).
type Keys interface {
	JWKS(ctx context.Context) (*jose.JSONWebKeySet, error)
}

// Mount registers both endpoints on mux; issuer returns the control
// plane's public URL, the iss of its ID tokens.
func Mount(mux *http.ServeMux, keys Keys, issuer func() string, log *slog.Logger) {
	h := &handler{keys: keys, issuer: issuer, log: log}
	mux.HandleFunc("GET "+JWKSPath, h.jwks)
	mux.HandleFunc("GET "+ConfigurationPath, h.configuration)
}

// Routes lists the patterns Mount registers; the authorization matrix test
// (internal/api/authzmatrix) checks that docs/authorization.md has each.
func Routes() []string { return []string{"GET " + JWKSPath, "GET " + ConfigurationPath} }

type handler struct {
	keys   Keys
	issuer func() string
	log    *slog.Logger
}

func (h *handler) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := h.keys.JWKS(r.Context())
	if err != nil {
		jsonerr.Write(w, r, h.log, err)
		return
	}
	h.write(w, set)
}

// configuration is the provider metadata (OpenID Connect Discovery 1.0,
// section 3) of a provider that issues ID tokens only through its API: no
// authorization endpoint takes browsers.
func (h *handler) configuration(w http.ResponseWriter, r *http.Request) {
	iss := h.issuer()
	h.write(w, map[string]any{
		"issuer":                                iss,
		"jwks_uri":                              iss + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{string(identity.IDTokenAlgorithm)},
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "org_id", "principal"},
	})
}

func (h *handler) write(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Relying parties cache keys; an hour matches the tokens' lifetime.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		h.log.Debug("write OIDC document", "err", err)
	}
}
