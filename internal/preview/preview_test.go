package preview_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/preview"
)

const (
	orgA    = "11111111-1111-4111-8111-111111111111"
	orgB    = "22222222-2222-4222-8222-222222222222"
	envID   = "33333333-3333-4333-8333-333333333333"
	creator = "44444444-4444-4444-8444-444444444444"
)

func TestParseDomain(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"preview.example.com", true}, {"localhost", true}, {"localhost:8080", true}, {"Preview.Example.COM", true},
		{"", true}, // off
		{"https://preview.example.com", false}, {"preview.example.com/x", false}, {"127.0.0.1", false},
		{"localhost:99999", false}, {".example.com", false}, {"a..b", false}, {"under_score.com", false},
	} {
		_, err := preview.ParseDomain("--preview-domain", tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseDomain(%q): %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "--preview-domain") {
			t.Errorf("ParseDomain(%q): %v does not name the flag", tc.in, err)
		}
	}
}

func TestDomain_ParseHost(t *testing.T) {
	plain, _ := preview.ParseDomain("d", "preview.example.com")
	withPort, _ := preview.ParseDomain("d", "localhost:8080")
	for _, tc := range []struct {
		d    preview.Domain
		host string
		port int
	}{
		{plain, "3000--" + envID + ".preview.example.com", 3000},
		{plain, "3000--" + envID + ".preview.example.com:443", 3000},
		{plain, "3000--" + strings.ToUpper(envID) + ".PREVIEW.example.com", 3000},
		{withPort, "65535--" + envID + ".localhost:8080", 65535},
		{withPort, "3000--" + envID + ".localhost:9090", 0},
		{withPort, "3000--" + envID + ".localhost", 0},
		{plain, "3000--" + envID + ".evil.com", 0},
		{plain, "3000--" + envID + "preview.example.com", 0},
		{plain, "0300--" + envID + ".preview.example.com", 0},
		{plain, "70000--" + envID + ".preview.example.com", 0},
		{plain, "3000-" + envID + ".preview.example.com", 0},
		{plain, "3000--not-a-uuid.preview.example.com", 0},
		{plain, "x.3000--" + envID + ".preview.example.com", 0},
		{plain, "preview.example.com", 0},
	} {
		id, port, ok := tc.d.ParseHost(tc.host)
		if ok != (tc.port != 0) || port != tc.port || (ok && id != envID) {
			t.Errorf("%s ParseHost(%q) = %q %d %v, want port %d", tc.d, tc.host, id, port, ok, tc.port)
		}
	}
}

type fakeEnvs struct{ e *environments.Environment }

func (f fakeEnvs) FindEnvironmentByID(_ context.Context, orgID, id string) (*environments.Environment, error) {
	if f.e.ID == id && f.e.OrgID == orgID {
		return f.e, nil
	}
	return nil, apperr.NotFound("environment %q", id)
}

func (f fakeEnvs) FindEnvironmentOfAnyOrganization(_ context.Context, id string) (*environments.Environment, error) {
	if f.e.ID == id {
		return f.e, nil
	}
	return nil, apperr.NotFound("environment %q", id)
}

func caller(org, subject string, scopes ...identity.Scope) context.Context {
	return identity.NewContext(context.Background(), &identity.Caller{OrgID: org, Subject: identity.Subject{ID: subject, Principal: identity.PrincipalUser}, Scopes: scopes})
}

// TestSignIn: who the console lets sign in to an owner-only port, and the
// code's round trip: bound to its host and to the browser's state, and
// expiring.
func TestSignIn(t *testing.T) {
	e := &environments.Environment{ID: envID, OrgID: orgA, Creator: identity.Subject{ID: creator, Principal: identity.PrincipalUser}}
	e.Spec.Ports = []environments.Port{{Port: 3000}, {Port: 4000, Admission: environments.AdmissionEveryone}}
	d, _ := preview.ParseDomain("d", "preview.example.com")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	envs := fakeEnvs{e}
	s := &preview.Service{Domain: d, Scheme: "https", Store: envs, Access: &envaccess.Service{Environments: envs}, Key: []byte("k"), Now: func() time.Time { return now }}
	rw := []identity.Scope{identity.ScopeEnvironmentsRead, identity.ScopeEnvironmentsWrite}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		port int
		code apperr.Code
	}{
		{"Creator", caller(orgA, creator, rw...), 3000, ""},
		{"Admin", caller(orgA, "someone", identity.ScopeAdmin), 3000, ""},
		{"ErrMember", caller(orgA, "someone", rw...), 3000, apperr.CodePermissionDenied},
		{"MemberPublicPort", caller(orgA, "someone", rw...), 4000, ""},
		{"ErrOtherOrganization", caller(orgB, creator, identity.ScopeAdmin), 3000, apperr.CodeNotFound},
		{"ErrUnlistedPort", caller(orgA, creator, rw...), 5000, apperr.CodeNotFound},
		{"ErrNoCaller", context.Background(), 3000, apperr.CodeUnauthenticated},
		{"ErrNoScope", caller(orgA, creator, identity.ScopeRunnersRead), 3000, apperr.CodePermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.SignIn(tc.ctx, envID, tc.port, "state1", "/x")
			if got := apperr.CodeOf(err); (tc.code == "" && err != nil) || (tc.code != "" && got != tc.code) {
				t.Fatalf("SignIn: %v, want %q", err, tc.code)
			}
		})
	}

	to, err := s.SignIn(caller(orgA, creator, rw...), envID, 3000, "state1", "//evil.com/x")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(to)
	host := "3000--" + envID + ".preview.example.com"
	if u.Scheme != "https" || u.Host != host || u.Path != preview.CallbackPath || u.Query().Get("next") != "/" {
		t.Fatalf("callback URL %s: want https://%s%s with next=/ (never another site)", to, host, preview.CallbackPath)
	}
	code := u.Query().Get("code")
	for name, try := range map[string]func() error{
		"OtherHost":  func() error { _, _, err := s.Redeem(code, "4000--"+envID+".preview.example.com", "state1"); return err },
		"OtherState": func() error { _, _, err := s.Redeem(code, host, "state2"); return err },
		"NoState":    func() error { _, _, err := s.Redeem(code, host, ""); return err },
		"Tampered":   func() error { _, _, err := s.Redeem(code[:len(code)-2]+"xx", host, "state1"); return err },
	} {
		if err := try(); apperr.CodeOf(err) != apperr.CodeUnauthenticated {
			t.Errorf("Redeem %s: %v, want unauthenticated", name, err)
		}
	}
	grant, g, err := s.Redeem(code, host+":443", "state1")
	if err != nil || g.Subject != creator {
		t.Fatalf("Redeem: %v %+v", err, g)
	}
	if _, err := s.Check(code, host); err == nil {
		t.Errorf("a code is not a grant")
	}
	if _, err := s.Check(grant, "4000--"+envID+".preview.example.com"); err == nil {
		t.Errorf("a grant of one host works on another")
	}
	if _, err := s.Check(grant, host); err != nil {
		t.Errorf("Check: %v", err)
	}
	now = now.Add(preview.GrantLifetime)
	if _, err := s.Check(grant, host); apperr.CodeOf(err) != apperr.CodeUnauthenticated {
		t.Errorf("an expired grant: %v", err)
	}
}
