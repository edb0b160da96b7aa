package secrets_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

var ctx = context.Background()

// env is a service on a real SQLite store with callers of two organizations.
type env struct {
	svc   *secrets.Service
	db    *sqlstore.DB
	orgID string
	// admin holds every scope; its subject is a service account.
	admin context.Context
	// other is an admin of another organization.
	other      context.Context
	otherOrgID string
}

var t0 = time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)

func setup(t *testing.T) *env {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	key, _, err := secrets.LoadKey("", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: secrets.NewService(db, key), db: db}
	now := t0
	e.svc.Now = func() time.Time { now = now.Add(time.Second); return now }
	for _, o := range []struct {
		id  *string
		ctx *context.Context
	}{{&e.orgID, &e.admin}, {&e.otherOrgID, &e.other}} {
		org := &identity.Organization{ID: uuid.NewString(), Name: "org-" + uuid.NewString()[:8], CreatedAt: t0}
		if err := db.CreateOrganization(ctx, org); err != nil {
			t.Fatal(err)
		}
		*o.id = org.ID
		*o.ctx = callerCtx(org.ID, identity.PrincipalServiceAccount, identity.ScopeAdmin)
	}
	return e
}

func callerCtx(orgID string, p identity.Principal, scopes ...identity.Scope) context.Context {
	id := uuid.NewString()
	c := &identity.Caller{OrgID: orgID, Subject: identity.Subject{ID: id, Principal: p}, TokenID: id, Scopes: scopes}
	if p == identity.PrincipalRunner {
		c.RunnerID = uuid.NewString()
	}
	return identity.NewContext(ctx, c)
}

func wantCode(tb testing.TB, err error, code apperr.Code, field string) {
	tb.Helper()
	if got := apperr.CodeOf(err); err == nil || got != code {
		tb.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
	if field != "" {
		if e := apperr.As(err); e.Field != field {
			tb.Fatalf("error %q names field %q, want %q", e.Public(), e.Field, field)
		}
	}
}

func (e *env) mustCreate(t *testing.T, c context.Context, in secrets.CreateInput) *secrets.Secret {
	t.Helper()
	s, err := e.svc.Create(c, in)
	if err != nil {
		t.Fatalf("create %q: %v", in.Name, err)
	}
	return s
}

// open seals the secrets ids to a fresh runner key and opens them again, as
// the runner will.
func (e *env) open(t *testing.T, orgID string, ids ...string) map[string]string {
	t.Helper()
	k := runnerKey(t)
	sealed, err := e.svc.SealedForRunner(ctx, orgID, k.PublicKey().Bytes(), ids)
	if err != nil {
		t.Fatalf("SealedForRunner: %v", err)
	}
	out := map[string]string{}
	for id, s := range sealed {
		v, err := secrets.Open(s, k.PublicKey().Bytes(), k.Bytes())
		if err != nil {
			t.Fatalf("open %s: %v", id, err)
		}
		out[id] = string(v)
	}
	return out
}

func TestSecrets_Create(t *testing.T) {
	e := setup(t)
	t.Run("OK", func(t *testing.T) {
		s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "NPM_TOKEN", Value: "npm-s3cret", EnvironmentVariable: true})
		c, _ := identity.FromContext(e.admin)
		if s.OrgID != e.orgID || s.Scope != (secrets.Scope{Kind: secrets.ScopeOrganization, ID: e.orgID}) ||
			!s.EnvironmentVariable || s.FilePath != "" || s.Creator != c.Subject || !s.CreatedAt.Equal(s.UpdatedAt) || s.Seq == 0 {
			t.Fatalf("created secret: %+v", s)
		}
		stored, err := e.db.FindSecretByID(ctx, e.orgID, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stored, s) {
			t.Fatalf("stored secret differs:\n got %+v\nwant %+v", stored, s)
		}
		if bytes.Contains(stored.Value.Data, []byte("npm-s3cret")) || stored.Value.KeyID != e.svc.Key.ID() {
			t.Fatalf("stored value: %+v", stored.Value)
		}
		if got := e.open(t, e.orgID, s.ID)[s.ID]; got != "npm-s3cret" {
			t.Fatalf("sealed value = %q", got)
		}
	})
	t.Run("Scopes", func(t *testing.T) {
		user := uuid.NewString()
		for _, sc := range []secrets.Scope{
			{Kind: secrets.ScopeOrganization, ID: e.orgID},
			{Kind: secrets.ScopeUser, ID: user},
			{Kind: secrets.ScopeServiceAccount, ID: user},
		} {
			s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "scoped", Value: "v", Scope: &sc})
			if s.Scope != sc {
				t.Fatalf("scope = %+v, want %+v", s.Scope, sc)
			}
		}
		_, err := e.svc.Create(e.admin, secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{Kind: secrets.ScopeOrganization, ID: e.otherOrgID}})
		wantCode(t, err, apperr.CodeNotFound, "")
	})
	t.Run("FileMount", func(t *testing.T) {
		s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "ssh key", Value: "-----BEGIN-----\n\x00binary", FilePath: "/home/me/.ssh/id"})
		if s.FilePath != "/home/me/.ssh/id" || s.EnvironmentVariable {
			t.Fatalf("file secret: %+v", s)
		}
		_, err := e.svc.Create(e.admin, secrets.CreateInput{Name: "another", Value: "v", FilePath: "/home/me/.ssh/id"})
		wantCode(t, err, apperr.CodeConflict, "")
		// Another scope may mount the same path: it overrides.
		e.mustCreate(t, e.admin, secrets.CreateInput{Name: "mine", Value: "v", FilePath: "/home/me/.ssh/id",
			Scope: &secrets.Scope{Kind: secrets.ScopeUser, ID: uuid.NewString()}})
	})
	t.Run("ErrDuplicateName", func(t *testing.T) {
		e.mustCreate(t, e.admin, secrets.CreateInput{Name: "DUP", Value: "v"})
		_, err := e.svc.Create(e.admin, secrets.CreateInput{Name: "DUP", Value: "other", EnvironmentVariable: true})
		wantCode(t, err, apperr.CodeConflict, "")
		if strings.Contains(err.Error(), "other") {
			t.Fatalf("the conflict error shows the value: %v", err)
		}
		// The same name in another organization is another secret.
		if _, err := e.svc.Create(e.other, secrets.CreateInput{Name: "DUP", Value: "v"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		long := strings.Repeat("x", secrets.MaxValueBytes+1)
		for _, tt := range []struct {
			name  string
			in    secrets.CreateInput
			field string
		}{
			{"NoName", secrets.CreateInput{Value: "v"}, "name"},
			{"NameTooLong", secrets.CreateInput{Name: strings.Repeat("n", 128), Value: "v"}, "name"},
			{"NameSpace", secrets.CreateInput{Name: " x", Value: "v"}, "name"},
			{"NameControl", secrets.CreateInput{Name: "a\nb", Value: "v"}, "name"},
			{"EnvNameDash", secrets.CreateInput{Name: "NPM-TOKEN", Value: "v", EnvironmentVariable: true}, "name"},
			{"EnvNameDigit", secrets.CreateInput{Name: "1TOKEN", Value: "v", EnvironmentVariable: true}, "name"},
			{"EnvNameReserved", secrets.CreateInput{Name: "RUNYARD_OUTPUT", Value: "v", EnvironmentVariable: true}, "name"},
			{"EnvNameReservedLower", secrets.CreateInput{Name: "runyard_x", Value: "v", EnvironmentVariable: true}, "name"},
			{"NoValue", secrets.CreateInput{Name: "x"}, "value"},
			{"ValueTooLong", secrets.CreateInput{Name: "x", Value: secrets.Value(long)}, "value"},
			{"EnvValueNUL", secrets.CreateInput{Name: "X", Value: "a\x00b", EnvironmentVariable: true}, "value"},
			{"FileRelative", secrets.CreateInput{Name: "x", Value: "v", FilePath: "home/x"}, "filePath"},
			{"FileDir", secrets.CreateInput{Name: "x", Value: "v", FilePath: "/home/"}, "filePath"},
			{"FileRoot", secrets.CreateInput{Name: "x", Value: "v", FilePath: "/"}, "filePath"},
			{"FileDotDot", secrets.CreateInput{Name: "x", Value: "v", FilePath: "/home/../etc/passwd"}, "filePath"},
			{"FileNUL", secrets.CreateInput{Name: "x", Value: "v", FilePath: "/a\x00b"}, "filePath"},
			{"FileAndEnv", secrets.CreateInput{Name: "X", Value: "v", FilePath: "/x", EnvironmentVariable: true}, "filePath"},
			{"ScopeEmpty", secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{}}, "scope"},
			{"ScopeProject", secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{Kind: secrets.ScopeProject, ID: uuid.NewString()}}, "scope.projectId"},
			{"ScopeUserNotUUID", secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{Kind: secrets.ScopeUser, ID: "bob"}}, "scope.userId"},
			{"ScopeServiceAccountEmpty", secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{Kind: secrets.ScopeServiceAccount}}, "scope.serviceAccountId"},
			{"ScopeOrganizationNotUUID", secrets.CreateInput{Name: "x", Value: "v", Scope: &secrets.Scope{Kind: secrets.ScopeOrganization, ID: "default"}}, "scope.organizationId"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.Create(e.admin, tt.in)
				wantCode(t, err, apperr.CodeInvalid, tt.field)
			})
		}
	})
	// A variable a secret would set may not shadow what commands rely on;
	// the error names the name. Mounted as a file, or not mounted, the
	// same name is only a name.
	t.Run("ErrEnvNameShadows", func(t *testing.T) {
		for _, name := range []string{"PATH", "HOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "SHELL", "USER", "RUNYARD_WORKSPACE"} {
			t.Run(name, func(t *testing.T) {
				_, err := e.svc.Create(e.admin, secrets.CreateInput{Name: name, Value: "v", EnvironmentVariable: true})
				wantCode(t, err, apperr.CodeInvalid, "name")
				if !strings.Contains(err.Error(), fmt.Sprintf("%q is reserved", name)) {
					t.Errorf("error %q does not name %s", err, name)
				}
				e.mustCreate(t, e.admin, secrets.CreateInput{Name: name, Value: "v", FilePath: "/home/me/." + strings.ToLower(name)})
			})
		}
		e.mustCreate(t, e.admin, secrets.CreateInput{Name: "PATHS", Value: "v", EnvironmentVariable: true})
	})
	t.Run("ErrPermission", func(t *testing.T) {
		in := secrets.CreateInput{Name: "x", Value: "v"}
		_, err := e.svc.Create(ctx, in)
		wantCode(t, err, apperr.CodeUnauthenticated, "")
		_, err = e.svc.Create(callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsRead), in)
		wantCode(t, err, apperr.CodePermissionDenied, "")
		_, err = e.svc.Create(callerCtx(e.orgID, identity.PrincipalRunner), in)
		wantCode(t, err, apperr.CodePermissionDenied, "")
		e.mustCreate(t, callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsWrite), secrets.CreateInput{Name: "write-only", Value: "v"})
	})
}

func TestSecrets_List(t *testing.T) {
	e := setup(t)
	user := secrets.Scope{Kind: secrets.ScopeUser, ID: uuid.NewString()}
	var want []string
	for i := range 7 {
		in := secrets.CreateInput{Name: fmt.Sprintf("S%d", i), Value: "v"}
		if i%3 == 1 {
			in.Scope = &user
		}
		want = append(want, e.mustCreate(t, e.admin, in).ID)
	}
	e.mustCreate(t, e.other, secrets.CreateInput{Name: "theirs", Value: "v"})

	list := func(t *testing.T, c context.Context, scope *secrets.Scope, size int32) []string {
		t.Helper()
		var ids []string
		token := ""
		for range 100 {
			page, err := paging.Parse(token, size)
			if err != nil {
				t.Fatal(err)
			}
			items, next, err := e.svc.List(c, scope, page)
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			for _, s := range items {
				ids = append(ids, s.ID)
			}
			if token = next; token == "" {
				return ids
			}
		}
		t.Fatal("more than 100 pages")
		return nil
	}
	t.Run("AllPaged", func(t *testing.T) {
		for _, size := range []int32{1, 2, 3, 7, 100} {
			if got := list(t, e.admin, nil, size); !reflect.DeepEqual(got, want) {
				t.Fatalf("page size %d: got %v, want %v", size, got, want)
			}
		}
	})
	t.Run("Scope", func(t *testing.T) {
		if got := list(t, e.admin, &user, 2); !reflect.DeepEqual(got, []string{want[1], want[4]}) {
			t.Fatalf("user scope: got %v", got)
		}
		org := secrets.Scope{Kind: secrets.ScopeOrganization, ID: e.orgID}
		if got := list(t, e.admin, &org, 2); len(got) != 5 {
			t.Fatalf("organization scope: got %d secrets, want 5", len(got))
		}
	})
	t.Run("ReadScopeSuffices", func(t *testing.T) {
		if got := list(t, callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsRead), nil, 0); len(got) != 7 {
			t.Fatalf("got %d secrets", len(got))
		}
	})
	t.Run("ErrOtherOrganization", func(t *testing.T) {
		_, _, err := e.svc.List(e.admin, &secrets.Scope{Kind: secrets.ScopeOrganization, ID: e.otherOrgID}, paging.Page{Limit: 10})
		wantCode(t, err, apperr.CodeNotFound, "")
	})
	t.Run("ErrPermission", func(t *testing.T) {
		_, _, err := e.svc.List(callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsWrite), nil, paging.Page{Limit: 10})
		wantCode(t, err, apperr.CodePermissionDenied, "")
	})
}

func TestSecrets_UpdateValue(t *testing.T) {
	e := setup(t)
	s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "ROTATE", Value: "old", EnvironmentVariable: true})
	t.Run("OK", func(t *testing.T) {
		if err := e.svc.UpdateValue(e.admin, s.ID, "new"); err != nil {
			t.Fatal(err)
		}
		if got := e.open(t, e.orgID, s.ID)[s.ID]; got != "new" {
			t.Fatalf("value after update = %q", got)
		}
		stored, _ := e.db.FindSecretByID(ctx, e.orgID, s.ID)
		if !stored.UpdatedAt.After(s.UpdatedAt) || !stored.CreatedAt.Equal(s.CreatedAt) || stored.Name != s.Name {
			t.Fatalf("after update: %+v", stored)
		}
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		wantCode(t, e.svc.UpdateValue(e.admin, s.ID, ""), apperr.CodeInvalid, "value")
		// The mount's rules hold: this one is a variable.
		wantCode(t, e.svc.UpdateValue(e.admin, s.ID, "a\x00b"), apperr.CodeInvalid, "value")
		wantCode(t, e.svc.UpdateValue(e.admin, "nope", "v"), apperr.CodeInvalid, "secretId")
		if got := e.open(t, e.orgID, s.ID)[s.ID]; got != "new" {
			t.Fatalf("a refused update changed the value to %q", got)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		wantCode(t, e.svc.UpdateValue(e.admin, uuid.NewString(), "v"), apperr.CodeNotFound, "")
		wantCode(t, e.svc.UpdateValue(e.other, s.ID, "hijack"), apperr.CodeNotFound, "")
		if got := e.open(t, e.orgID, s.ID)[s.ID]; got != "new" {
			t.Fatalf("another organization changed the value to %q", got)
		}
	})
	t.Run("ErrPermission", func(t *testing.T) {
		err := e.svc.UpdateValue(callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsRead), s.ID, "v")
		wantCode(t, err, apperr.CodePermissionDenied, "")
	})
}

func TestSecrets_Delete(t *testing.T) {
	e := setup(t)
	s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "GONE", Value: "v"})
	wantCode(t, e.svc.Delete(e.other, s.ID), apperr.CodeNotFound, "")
	wantCode(t, e.svc.Delete(callerCtx(e.orgID, identity.PrincipalServiceAccount, identity.ScopeSecretsRead), s.ID), apperr.CodePermissionDenied, "")
	wantCode(t, e.svc.Delete(e.admin, "x"), apperr.CodeInvalid, "secretId")
	if err := e.svc.Delete(e.admin, s.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, e.svc.Delete(e.admin, s.ID), apperr.CodeNotFound, "")
	if got := e.open(t, e.orgID, s.ID); len(got) != 0 {
		t.Fatalf("a deleted secret is still sealed: %v", got)
	}
}

func TestSecrets_SealedForRunner(t *testing.T) {
	e := setup(t)
	a := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "A", Value: "value-a"})
	b := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "B", Value: "value-b", FilePath: "/b"})
	theirs := e.mustCreate(t, e.other, secrets.CreateInput{Name: "A", Value: "their-a"})

	got := e.open(t, e.orgID, a.ID, b.ID, a.ID, theirs.ID, uuid.NewString(), "not-a-uuid")
	if want := map[string]string{a.ID: "value-a", b.ID: "value-b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sealed values = %v, want %v", got, want)
	}
	if got := e.open(t, e.orgID); len(got) != 0 {
		t.Fatalf("no IDs sealed %v", got)
	}
	_, err := e.svc.SealedForRunner(ctx, e.orgID, nil, []string{a.ID})
	wantCode(t, err, apperr.CodeFailedPrecondition, "")

	t.Run("ErrKeyChanged", func(t *testing.T) {
		other, _, _ := secrets.LoadKey("", t.TempDir())
		svc := secrets.NewService(e.db, other)
		_, err := svc.SealedForRunner(ctx, e.orgID, runnerKey(t).PublicKey().Bytes(), []string{a.ID})
		wantCode(t, err, apperr.CodeInternal, "")
		if !strings.Contains(err.Error(), secrets.KeyEnv) {
			t.Fatalf("error %v does not say the key changed", err)
		}
	})
}

func TestSecrets_EnvVarsFor(t *testing.T) {
	e := setup(t)
	alice := identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalUser}
	bot := identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}
	mk := func(name string, scope *secrets.Scope, envVar bool, path string) string {
		return e.mustCreate(t, e.admin, secrets.CreateInput{Name: name, Value: "v", Scope: scope, EnvironmentVariable: envVar, FilePath: path}).ID
	}
	aliceScope := &secrets.Scope{Kind: secrets.ScopeUser, ID: alice.ID}
	botScope := &secrets.Scope{Kind: secrets.ScopeServiceAccount, ID: bot.ID}
	orgToken := mk("TOKEN", nil, true, "")
	orgURL := mk("URL", nil, true, "")
	mk("not-a-variable", nil, false, "")
	orgFile := mk("org file", nil, false, "/etc/cfg")
	aliceToken := mk("TOKEN", aliceScope, true, "")
	aliceOnly := mk("ALICE", aliceScope, true, "")
	aliceFile := mk("alice file", aliceScope, false, "/etc/cfg")
	botOnly := mk("BOT", botScope, true, "")
	// Alice's ID as a service account is someone else.
	mk("WRONG_KIND", &secrets.Scope{Kind: secrets.ScopeServiceAccount, ID: alice.ID}, true, "")
	e.mustCreate(t, e.other, secrets.CreateInput{Name: "THEIRS", Value: "v", EnvironmentVariable: true})

	for _, tt := range []struct {
		name  string
		owner identity.Subject
		env   []secrets.EnvVar
		files []secrets.File
	}{
		{"User", alice,
			[]secrets.EnvVar{{"ALICE", aliceOnly}, {"TOKEN", aliceToken}, {"URL", orgURL}},
			[]secrets.File{{"/etc/cfg", aliceFile}}},
		{"ServiceAccount", bot,
			[]secrets.EnvVar{{"BOT", botOnly}, {"TOKEN", orgToken}, {"URL", orgURL}},
			[]secrets.File{{"/etc/cfg", orgFile}}},
		{"Runner", identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalRunner},
			[]secrets.EnvVar{{"TOKEN", orgToken}, {"URL", orgURL}},
			[]secrets.File{{"/etc/cfg", orgFile}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env, err := e.svc.EnvVarsFor(ctx, e.orgID, tt.owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(env, tt.env) {
				t.Fatalf("EnvVarsFor = %v, want %v", env, tt.env)
			}
			files, err := e.svc.FilesFor(ctx, e.orgID, tt.owner)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(files, tt.files) {
				t.Fatalf("FilesFor = %v, want %v", files, tt.files)
			}
		})
	}
}

// TestValue_Redacted checks that a value formatted or logged by accident
// shows as [redacted].
func TestValue_Redacted(t *testing.T) {
	const plain = "do-not-print-me"
	in := secrets.CreateInput{Name: "X", Value: plain}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("create", "input", in, "value", in.Value)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("create", "input", in, "value", in.Value)
	out := fmt.Sprintf("%v %+v %#v %s %q", in, in, in, in.Value, in.Value) + buf.String()
	if strings.Contains(out, plain) {
		t.Fatalf("the value leaked: %s", out)
	}
	if !strings.Contains(out, "[redacted]") {
		t.Fatalf("no [redacted] in %s", out)
	}
}

// TestSecrets_Changed checks that every change of a secret tells the
// control plane, so that runners get it at once, and that a refused one
// does not.
func TestSecrets_Changed(t *testing.T) {
	e := setup(t)
	var calls []string
	e.svc.Changed = func(orgID string) { calls = append(calls, orgID) }
	s := e.mustCreate(t, e.admin, secrets.CreateInput{Name: "cfg", Value: "v1", FilePath: "/cfg"})
	if err := e.svc.UpdateValue(e.admin, s.ID, "v2"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(e.admin, s.ID); err != nil {
		t.Fatal(err)
	}
	if want := []string{e.orgID, e.orgID, e.orgID}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("Changed calls after create, update, delete = %v, want %v", calls, want)
	}
	calls = nil
	_, err := e.svc.Create(e.admin, secrets.CreateInput{Name: "bad", Value: "v", FilePath: "relative"})
	wantCode(t, err, apperr.CodeInvalid, "filePath")
	wantCode(t, e.svc.UpdateValue(e.admin, s.ID, "v3"), apperr.CodeNotFound, "")
	wantCode(t, e.svc.Delete(e.other, s.ID), apperr.CodeNotFound, "")
	if len(calls) != 0 {
		t.Fatalf("refused changes called Changed: %v", calls)
	}
}
