package envaccess_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
)

// The rules of envaccess over a fake store and opener; the sessions
// themselves are tested end to end in cmd/runyard (envaccess_test.go).

const (
	orgA  = "11111111-1111-4111-8111-111111111111"
	orgB  = "22222222-2222-4222-8222-222222222222"
	envID = "33333333-3333-4333-8333-333333333333"
)

type fakeStore struct {
	envs map[string]*environments.Environment
}

func (f *fakeStore) FindEnvironmentByID(_ context.Context, orgID, id string) (*environments.Environment, error) {
	if e := f.envs[id]; e != nil && e.OrgID == orgID {
		return e, nil
	}
	return nil, apperr.NotFound("environment %q", id)
}

func (f *fakeStore) FindEnvironmentOfAnyOrganization(_ context.Context, id string) (*environments.Environment, error) {
	if e := f.envs[id]; e != nil {
		return e, nil
	}
	return nil, apperr.NotFound("environment %q", id)
}

type fakeOpener struct{ got []envaccess.Request }

func (f *fakeOpener) OpenSession(_ context.Context, orgID, runnerID string, req envaccess.Request) (envaccess.Stream, error) {
	f.got = append(f.got, req)
	return nil, nil
}

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func setup(t *testing.T, key ssh.PublicKey) (*envaccess.Service, *fakeOpener, *environments.Environment) {
	t.Helper()
	e := &environments.Environment{ID: envID, OrgID: orgA, RunnerID: "r1"}
	e.Spec.DesiredPhase = environments.PhaseRunning
	if key != nil {
		e.Spec.SSHPublicKeys = []environments.SSHPublicKey{{ID: "k", Value: string(ssh.MarshalAuthorizedKey(key))}}
	}
	st := &fakeStore{envs: map[string]*environments.Environment{envID: e}}
	op := &fakeOpener{}
	return &envaccess.Service{Environments: st, Store: st, Opener: op}, op, e
}

func as(org string, scopes ...identity.Scope) context.Context {
	return identity.NewContext(context.Background(), &identity.Caller{OrgID: org, Subject: identity.Subject{ID: "x", Principal: identity.PrincipalServiceAccount}, Scopes: scopes})
}

func TestService_Open(t *testing.T) {
	write := as(orgA, identity.ScopeEnvironmentsWrite)
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		req   envaccess.Request
		stop  bool
		code  apperr.Code
		field string
	}{
		{name: "OK", ctx: write, req: envaccess.Request{Kind: envaccess.KindExec, Argv: []string{"true"}}},
		{name: "OKShell", ctx: write, req: envaccess.Request{Kind: envaccess.KindExec, TTY: true}},
		{name: "OKPort", ctx: write, req: envaccess.Request{Kind: envaccess.KindTCP, Port: 8080}},
		{name: "ErrNoCaller", ctx: context.Background(), req: envaccess.Request{Kind: envaccess.KindExec}, code: apperr.CodeUnauthenticated},
		{name: "ErrReadOnly", ctx: as(orgA, identity.ScopeEnvironmentsRead), req: envaccess.Request{Kind: envaccess.KindExec}, code: apperr.CodePermissionDenied},
		{name: "ErrOtherOrganization", ctx: as(orgB, identity.ScopeEnvironmentsWrite), req: envaccess.Request{Kind: envaccess.KindExec}, code: apperr.CodeNotFound},
		{name: "ErrStopped", ctx: write, stop: true, req: envaccess.Request{Kind: envaccess.KindExec}, code: apperr.CodeFailedPrecondition},
		{name: "ErrPort", ctx: write, req: envaccess.Request{Kind: envaccess.KindTCP, Port: 70000}, code: apperr.CodeInvalid, field: "port"},
		{name: "ErrEmptyProgram", ctx: write, req: envaccess.Request{Kind: envaccess.KindExec, Argv: []string{""}}, code: apperr.CodeInvalid, field: "command[0]"},
		{name: "ErrEnvName", ctx: write, req: envaccess.Request{Kind: envaccess.KindExec, Env: map[string]string{"1X": "y"}}, code: apperr.CodeInvalid, field: "env"},
		{name: "ErrKind", ctx: write, req: envaccess.Request{Kind: 42}, code: apperr.CodeInvalid, field: "kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc, op, e := setup(t, nil)
			if tc.stop {
				e.Spec.DesiredPhase = environments.PhaseStopped
			}
			req := tc.req
			req.EnvironmentID = envID
			_, err := svc.Open(tc.ctx, req, "test")
			if tc.code == "" {
				if err != nil || len(op.got) != 1 {
					t.Fatalf("Open: %v (opened %d)", err, len(op.got))
				}
				if req.TTY && (op.got[0].Cols != 80 || op.got[0].Rows != 24) {
					t.Errorf("a terminal without a size got %dx%d, want 80x24", op.got[0].Cols, op.got[0].Rows)
				}
				return
			}
			if got := apperr.CodeOf(err); got != tc.code {
				t.Fatalf("Open: %v, want code %s", err, tc.code)
			}
			if tc.field != "" && apperr.As(err).Field != tc.field {
				t.Errorf("Open: field %q, want %q", apperr.As(err).Field, tc.field)
			}
			if len(op.got) != 0 {
				t.Errorf("a refused Open reached the runner")
			}
		})
	}
}

func TestService_SSHLogin(t *testing.T) {
	key := newKey(t)
	svc, op, e := setup(t, key)
	ctx := context.Background()

	l, err := svc.SSHLogin(ctx, envID, key)
	if err != nil {
		t.Fatalf("login with a listed key: %v", err)
	}
	if l.Caller.OrgID != orgA || l.Caller.Subject.Principal != identity.PrincipalEnvironment || !strings.HasPrefix(l.Caller.TokenID, "SHA256:") {
		t.Errorf("login caller %+v", l.Caller)
	}
	for name, try := range map[string]func() error{
		"ErrOtherKey":  func() error { _, err := svc.SSHLogin(ctx, envID, newKey(t)); return err },
		"ErrUnknown":   func() error { _, err := svc.SSHLogin(ctx, "44444444-4444-4444-8444-444444444444", key); return err },
		"ErrNotAnUUID": func() error { _, err := svc.SSHLogin(ctx, "root", key); return err },
	} {
		err := try()
		var r *envaccess.RefusedLogin
		if !errors.Is(err, envaccess.ErrLoginRefused) || !errors.As(err, &r) || err.Error() != "permission denied" {
			t.Errorf("%s: %v, want the one refusal", name, err)
		}
	}

	// A login opens sessions in its own environment only.
	if _, err := svc.OpenAs(ctx, l, envaccess.Request{EnvironmentID: "55555555-5555-4555-8555-555555555555", Kind: envaccess.KindExec}, "ssh"); err != nil {
		t.Fatalf("OpenAs: %v", err)
	}
	if got := op.got[len(op.got)-1].EnvironmentID; got != envID {
		t.Errorf("OpenAs opened a session in %s, want the login's %s", got, envID)
	}
	// A key removed from the spec opens nothing more.
	e.Spec.SSHPublicKeys = nil
	if _, err := svc.OpenAs(ctx, l, envaccess.Request{Kind: envaccess.KindExec}, "ssh"); apperr.CodeOf(err) != apperr.CodePermissionDenied {
		t.Errorf("OpenAs after the key was removed: %v, want permission_denied", err)
	}
}
