package testutil

// A real OpenID provider for sign-in tests: github.com/zitadel/oidc's op
// package over real HTTP on loopback, with an in-memory storage adapted from
// that module's example/server/storage (Apache-2.0), cut down to the
// authorization-code flow, and a login page a test's HTTP client submits.
// Tests make it misbehave the way real providers can (a client's ID token
// lifetime) or put a Hook in front of it
// (to alter a request or an answer) while the provider stays the real one.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// OPUser is an account at the test provider.
type OPUser struct {
	ID, Username, Password string
	Email                  string
	EmailVerified          bool
	Name                   string
	// Claims are extra claims of its ID tokens (e.g. "groups").
	Claims map[string]any
}

// OPClient is a relying party registered at the test provider.
type OPClient struct {
	ID, Secret   string
	RedirectURIs []string
	// IDTokenLifetime is how long its ID tokens are valid; zero means an
	// hour, a negative one issues tokens already expired.
	IDTokenLifetime time.Duration
}

// OP is a running test provider.
type OP struct {
	// Issuer is the provider's issuer URL (http://127.0.0.1:port).
	Issuer  string
	storage *opStorage
	srv     *httptest.Server
	mu      sync.Mutex
	hook    func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

// StartOP starts a provider with clients and users on loopback; it stops
// with the test.
func StartOP(t testing.TB, clients []OPClient, users []OPUser) *OP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("op listen: %v", err)
	}
	o := &OP{Issuer: "http://" + ln.Addr().String()}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("op key: %v", err)
	}
	o.storage = &opStorage{
		requests: map[string]*opAuthRequest{}, codes: map[string]string{},
		clients: map[string]*OPClient{}, users: map[string]*OPUser{},
		key: &opKey{id: uuid.NewString(), key: key},
	}
	for i := range clients {
		o.storage.clients[clients[i].ID] = &clients[i]
	}
	for i := range users {
		o.storage.users[users[i].ID] = &users[i]
	}
	provider, err := op.NewProvider(&op.Config{
		CryptoKey:      [32]byte{1, 2, 3},
		CodeMethodS256: true,
		AuthMethodPost: true,
	}, o.storage, op.StaticIssuer(o.Issuer), op.WithAllowInsecure())
	if err != nil {
		t.Fatalf("op: %v", err)
	}
	mux := http.NewServeMux()
	interceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)
	callback := op.AuthCallbackURL(provider)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		_ = loginPage.Execute(w, r.URL.Query().Get("authRequestID"))
	})
	mux.HandleFunc("POST /login", interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.FormValue("id")
		if err := o.storage.checkLogin(r.FormValue("username"), r.FormValue("password"), id); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.Handle("/", provider)
	o.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		hook := o.hook
		o.mu.Unlock()
		if hook != nil {
			hook(w, r, mux)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	o.srv.Listener.Close()
	o.srv.Listener = ln
	o.srv.Start()
	t.Cleanup(o.srv.Close)
	return o
}

// SetHook puts fn in front of the provider (nil removes it): it sees every
// request and calls next to let the provider answer.
func (o *OP) SetHook(fn func(w http.ResponseWriter, r *http.Request, next http.Handler)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hook = fn
}

// AddRedirectURI registers uri for the client, for a relying party whose
// address is known only once it listens.
func (o *OP) AddRedirectURI(clientID, uri string) {
	o.storage.mu.Lock()
	defer o.storage.mu.Unlock()
	c := o.storage.clients[clientID]
	c.RedirectURIs = append(c.RedirectURIs, uri)
}

// Stop stops the provider (a provider that is down).
func (o *OP) Stop() { o.srv.Close() }

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<form method="POST" action="/login"><input type="hidden" name="id" value="{{.}}">
<input name="username"><input name="password" type="password"><button>Sign in</button></form>`))

// opStorage implements op.Storage in memory for the code flow.
type opStorage struct {
	mu       sync.Mutex
	requests map[string]*opAuthRequest
	codes    map[string]string
	clients  map[string]*OPClient
	users    map[string]*OPUser
	key      *opKey
}

var _ op.Storage = (*opStorage)(nil)

func (s *opStorage) checkLogin(username, password, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return errors.New("request not found")
	}
	for _, u := range s.users {
		if u.Username == username && u.Password == password {
			req.UserID, req.done, req.authTime = u.ID, true, time.Now()
			return nil
		}
	}
	return errors.New("username or password wrong")
}

func (s *opStorage) CreateAuthRequest(_ context.Context, ar *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := &opAuthRequest{
		ID: uuid.NewString(), ClientID: ar.ClientID, RedirectURI: ar.RedirectURI, State: ar.State,
		Nonce: ar.Nonce, Scopes: ar.Scopes, ResponseType: ar.ResponseType, ResponseMode: ar.ResponseMode, UserID: userID,
	}
	if ar.CodeChallenge != "" {
		req.CodeChallenge = &oidc.CodeChallenge{Challenge: ar.CodeChallenge, Method: ar.CodeChallengeMethod}
	}
	s.requests[req.ID] = req
	return req, nil
}

func (s *opStorage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req, ok := s.requests[id]
	if !ok {
		return nil, errors.New("request not found")
	}
	return req, nil
}

func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	id, ok := s.codes[code]
	s.mu.Unlock()
	if !ok {
		return nil, errors.New("code invalid or expired")
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *opStorage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

func (s *opStorage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

func (s *opStorage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return uuid.NewString(), time.Now().Add(5 * time.Minute), nil
}

func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errors.New("refresh tokens are not supported")
}

func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, errors.New("refresh tokens are not supported")
}

func (s *opStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s *opStorage) RevokeToken(context.Context, string, string, string) *oidc.Error { return nil }

func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

func (s *opStorage) SigningKey(context.Context) (op.SigningKey, error) { return s.key, nil }

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *opStorage) KeySet(context.Context) ([]op.Key, error) {
	return []op.Key{&opPublicKey{s.key}}, nil
}

func (s *opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("client not found")
	}
	return &opClient{c}, nil
}

func (s *opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || c.Secret != secret {
		return errors.New("invalid client")
	}
	return nil
}

func (s *opStorage) SetUserinfoFromScopes(_ context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return errors.New("user not found")
	}
	info.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = u.Email
		info.EmailVerified = oidc.Bool(u.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.Username
	}
	for k, v := range u.Claims {
		info.AppendClaims(k, v)
	}
	return nil
}

func (s *opStorage) SetUserinfoFromToken(context.Context, *oidc.UserInfo, string, string, string) error {
	return errors.New("userinfo is not supported")
}

func (s *opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errors.New("introspection is not supported")
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile is not supported")
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile is not supported")
}

func (s *opStorage) Health(context.Context) error { return nil }

type opAuthRequest struct {
	ID, ClientID, RedirectURI, State, Nonce, UserID string
	Scopes                                          []string
	ResponseType                                    oidc.ResponseType
	ResponseMode                                    oidc.ResponseMode
	CodeChallenge                                   *oidc.CodeChallenge
	done                                            bool
	authTime                                        time.Time
}

func (a *opAuthRequest) GetID() string  { return a.ID }
func (a *opAuthRequest) GetACR() string { return "" }
func (a *opAuthRequest) GetAMR() []string {
	if a.done {
		return []string{"pwd"}
	}
	return nil
}
func (a *opAuthRequest) GetAudience() []string                 { return []string{a.ClientID} }
func (a *opAuthRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *opAuthRequest) GetClientID() string                   { return a.ClientID }
func (a *opAuthRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.CodeChallenge }
func (a *opAuthRequest) GetNonce() string                      { return a.Nonce }
func (a *opAuthRequest) GetRedirectURI() string                { return a.RedirectURI }
func (a *opAuthRequest) GetResponseType() oidc.ResponseType    { return a.ResponseType }
func (a *opAuthRequest) GetResponseMode() oidc.ResponseMode    { return a.ResponseMode }
func (a *opAuthRequest) GetScopes() []string                   { return a.Scopes }
func (a *opAuthRequest) GetState() string                      { return a.State }
func (a *opAuthRequest) GetSubject() string                    { return a.UserID }
func (a *opAuthRequest) Done() bool                            { return a.done }

type opClient struct{ c *OPClient }

func (c *opClient) GetID() string                       { return c.c.ID }
func (c *opClient) RedirectURIs() []string              { return c.c.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string    { return nil }
func (c *opClient) ApplicationType() op.ApplicationType { return op.ApplicationTypeWeb }
func (c *opClient) AuthMethod() oidc.AuthMethod         { return oidc.AuthMethodBasic }
func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *opClient) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *opClient) LoginURL(id string) string    { return "/login?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *opClient) IDTokenLifetime() time.Duration {
	if c.c.IDTokenLifetime == 0 {
		return time.Hour
	}
	return c.c.IDTokenLifetime
}

// DevMode allows http redirect URIs on loopback.
func (c *opClient) DevMode() bool { return true }
func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *opClient) IsScopeAllowed(string) bool { return false }

// IDTokenUserinfoClaimsAssertion puts the email, profile and extra claims
// into the ID token itself, as most providers do.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *opClient) ClockSkew() time.Duration             { return 0 }

type opKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *opKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *opKey) Key() any                                    { return k.key }
func (k *opKey) ID() string                                  { return k.id }

type opPublicKey struct{ k *opKey }

func (k *opPublicKey) ID() string                         { return k.k.id }
func (k *opPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *opPublicKey) Use() string                        { return "sig" }
func (k *opPublicKey) Key() any                           { return &k.k.key.PublicKey }

// String names the provider in test failures.
func (o *OP) String() string { return fmt.Sprintf("OP %s", o.Issuer) }
