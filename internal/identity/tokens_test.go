package identity_test

import (
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
)

const issuer = "https://runyard.example.test"

func newTokenService(t *testing.T) (*identity.Service, *clock) {
	t.Helper()
	s, db, c := newService(t)
	s.Keys = db
	s.Issuer = func() string { return issuer + "/" }
	return s, c
}

func TestLogsToken(t *testing.T) {
	s, c := newTokenService(t)
	admin := adminContext(t, s)
	caller, _ := identity.FromContext(admin)
	const env, runner = "8b0c7d1e-3a1f-4c55-9d77-6f0c1e2a3b4c", "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b"
	tok, exp, err := s.IssueLogsToken(admin, caller, env, runner)
	if err != nil || !strings.HasPrefix(tok, identity.LogsTokenPrefix) {
		t.Fatalf("IssueLogsToken = %q, %v", tok, err)
	}
	if want := c.t.Add(identity.LogsTokenTTL); !exp.Equal(want) {
		t.Errorf("expiry %v, want %v", exp, want)
	}
	got, err := s.Authenticate(ctx, tok)
	if err != nil {
		t.Fatalf("authenticate the logs token: %v", err)
	}
	if got.OrgID != caller.OrgID || got.Logs == nil || got.Logs.EnvironmentID != env || got.Logs.RunnerID != runner ||
		got.Subject.Principal != identity.PrincipalEnvironment || len(got.Scopes) != 0 {
		t.Fatalf("logs token caller = %+v (grant %+v)", got, got.Logs)
	}
	// It holds no scope: it reads logs and does nothing else.
	for _, scope := range identity.KnownScopes {
		if got.Has(scope) {
			t.Errorf("a logs token holds scope %s", scope)
		}
	}
	lc := identity.NewContext(ctx, got)
	if _, err := identity.RequireLogs(lc, runner); err != nil {
		t.Errorf("RequireLogs on its runner: %v", err)
	}
	_, err = identity.RequireLogs(lc, "00000000-0000-4000-8000-000000000000")
	wantCode(t, err, apperr.CodePermissionDenied)
	_, err = s.IDToken(lc, identity.IDTokenInput{Audience: []string{"x"}})
	wantCode(t, err, apperr.CodePermissionDenied)

	for name, bad := range map[string]string{
		"tampered payload": tok[:len(identity.LogsTokenPrefix)+3] + "x" + tok[len(identity.LogsTokenPrefix)+4:],
		"tampered mac":     tok[:len(tok)-2] + "AA",
		"no mac":           strings.Split(tok, ".")[0],
		"empty":            identity.LogsTokenPrefix,
	} {
		_, err := s.Authenticate(ctx, bad)
		if apperr.CodeOf(err) != apperr.CodeUnauthenticated {
			t.Errorf("%s: got %v, want unauthenticated", name, err)
		}
	}
	c.t = c.t.Add(identity.LogsTokenTTL - time.Second)
	if _, err := s.Authenticate(ctx, tok); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
	c.t = c.t.Add(time.Second)
	_, err = s.Authenticate(ctx, tok)
	wantCode(t, err, apperr.CodeUnauthenticated)
}

func TestIDToken(t *testing.T) {
	s, c := newTokenService(t)
	admin := adminContext(t, s)
	caller, _ := identity.FromContext(admin)
	tok, err := s.IDToken(admin, identity.IDTokenInput{Audience: []string{"https://a.example", "https://b.example"}})
	if err != nil {
		t.Fatalf("IDToken: %v", err)
	}
	keys, err := s.JWKS(ctx)
	if err != nil || len(keys.Keys) != 1 || !keys.Keys[0].IsPublic() {
		t.Fatalf("JWKS = %+v, %v", keys, err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{identity.IDTokenAlgorithm})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if kid := parsed.Headers[0].KeyID; kid == "" || kid != keys.Keys[0].KeyID {
		t.Errorf("kid %q, JWKS key %q", kid, keys.Keys[0].KeyID)
	}
	var claims identity.IDTokenClaims
	if err := parsed.Claims(keys, &claims); err != nil {
		t.Fatalf("verify with the JWKS: %v", err)
	}
	if err := claims.Validate(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{"https://b.example"}, Time: c.t}); err != nil {
		t.Errorf("claims: %v", err)
	}
	if claims.Subject != caller.Subject.ID || claims.OrganizationID != caller.OrgID || claims.Principal != caller.Subject.Principal {
		t.Errorf("claims %+v, caller %+v", claims, caller)
	}
	if got := claims.Expiry.Time().Sub(claims.IssuedAt.Time()); got != identity.IDTokenTTL {
		t.Errorf("lifetime %v, want %v", got, identity.IDTokenTTL)
	}
	if err := claims.Validate(jwt.Expected{Issuer: issuer, Time: c.t.Add(identity.IDTokenTTL + 2*time.Minute)}); err == nil {
		t.Error("the token validates after its expiry")
	}
	// Another key does not verify it.
	s2, _ := newTokenService(t)
	other, _ := s2.JWKS(ctx)
	if err := parsed.Claims(other, &claims); err == nil {
		t.Error("another server's keys verify the token")
	}
	// The key is derived from the stored server key: asking again gives
	// the same one.
	again, _ := s.JWKS(ctx)
	if again.Keys[0].KeyID != keys.Keys[0].KeyID {
		t.Error("the signing key changed between calls")
	}

	for _, tc := range []struct {
		name  string
		aud   []string
		field string
	}{
		{"none", nil, "audience"},
		{"blank", []string{" "}, "audience[0]"},
		{"too long", []string{strings.Repeat("a", 513)}, "audience[0]"},
		{"too many", make([]string, identity.MaxAudiences+1), "audience"},
	} {
		_, err := s.IDToken(admin, identity.IDTokenInput{Audience: tc.aud})
		wantCode(t, err, apperr.CodeInvalid)
		if !strings.HasPrefix(err.Error(), tc.field+":") {
			t.Errorf("%s: %v does not name %s", tc.name, err, tc.field)
		}
	}
	_, err = s.IDToken(ctx, identity.IDTokenInput{Audience: []string{"x"}})
	wantCode(t, err, apperr.CodeUnauthenticated)
}

// FuzzLogsToken: whatever follows the logs-token prefix, only the token
// that was issued authenticates, and nothing panics.
func FuzzLogsToken(f *testing.F) {
	s, db, _ := newService(f)
	s.Keys = db
	admin := adminContext(f, s)
	caller, _ := identity.FromContext(admin)
	tok, _, err := s.IssueLogsToken(admin, caller, "8b0c7d1e-3a1f-4c55-9d77-6f0c1e2a3b4c", "1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(strings.TrimPrefix(tok, identity.LogsTokenPrefix))
	f.Add("")
	f.Add(".")
	f.Add("e30.")
	f.Fuzz(func(t *testing.T, rest string) {
		c, err := s.Authenticate(ctx, identity.LogsTokenPrefix+rest)
		if err == nil && identity.LogsTokenPrefix+rest != tok {
			t.Fatalf("%q authenticated as %+v", rest, c)
		}
		if err != nil && apperr.CodeOf(err) != apperr.CodeUnauthenticated {
			t.Fatalf("%q: %v, want unauthenticated", rest, err)
		}
	})
}
