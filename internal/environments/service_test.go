package environments_test

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/automations/spec"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

var ctx = context.Background()

// env is a service on a real SQLite store with an admin caller's context.
type env struct {
	svc     *environments.Service
	runners *runners.Service
	db      *sqlstore.DB
	admin   context.Context
	orgID   string
	// changes records the Changed hook's runner IDs.
	changes []string
}

func setup(t *testing.T) *env {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return setupOn(t, db)
}

// setupOn is setup on db, which it closes when the test ends.
func setupOn(t *testing.T, db *sqlstore.DB) *env {
	t.Helper()
	t.Cleanup(func() { db.Close() })
	ids := identity.NewService(db)
	const secret = "admin-value-0123456789"
	if _, err := ids.Bootstrap(ctx, secret); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c, err := ids.Authenticate(ctx, secret)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	e := &env{svc: environments.NewService(db), runners: runners.NewService(db), db: db, admin: identity.NewContext(ctx, c), orgID: c.OrgID}
	e.svc.Changed = func(orgID, runnerID string) {
		if orgID != e.orgID {
			t.Errorf("Changed for organization %q, want %q", orgID, e.orgID)
		}
		e.changes = append(e.changes, runnerID)
	}
	return e
}

func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails unless err has code and its message contains every string of
// contains.
func wantErr(t *testing.T, err error, code apperr.Code, contains ...string) {
	t.Helper()
	if got := apperr.CodeOf(err); err == nil || got != code {
		t.Fatalf("got error %v (code %s), want code %s", err, got, code)
	}
	for _, s := range contains {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not contain %q", err, s)
		}
	}
}

// runner creates a runner and makes it ACTIVE, as a connected daemon would.
func (e *env) runner(t *testing.T, name string) *runners.Runner {
	t.Helper()
	r, _, err := e.runners.Create(e.admin, runners.CreateInput{Name: name, Provider: runners.ProviderLinuxHost})
	must(t, err, "create runner")
	r, err = e.db.UpdateRunner(ctx, e.orgID, r.ID, func(r *runners.Runner) error {
		r.Status.Phase = runners.PhaseActive
		r.LastSeen = time.Now()
		return nil
	})
	must(t, err, "activate runner")
	return r
}

// runnerCtx is the context of r's daemon.
func (e *env) runnerCtx(r *runners.Runner) context.Context {
	return identity.NewContext(ctx, &identity.Caller{
		OrgID: e.orgID, Subject: identity.Subject{ID: r.ID, Principal: identity.PrincipalRunner}, RunnerID: r.ID,
	})
}

func (e *env) keyCtx(scopes ...identity.Scope) context.Context {
	return identity.NewContext(ctx, &identity.Caller{
		OrgID: e.orgID, Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}, Scopes: scopes,
	})
}

func gitInput(class string) environments.CreateInput {
	return environments.CreateInput{Spec: environments.Spec{
		Machine: environments.Machine{Class: class},
		Content: environments.Content{Initializers: []environments.Initializer{{Git: &environments.Git{
			RemoteURI: "https://github.com/runyard/demo.git",
		}}}},
	}}
}

func (e *env) create(t *testing.T, r *runners.Runner) *environments.Environment {
	t.Helper()
	x, err := e.svc.Create(e.admin, gitInput(environments.DefaultClassID(r.ID)))
	must(t, err, "create environment")
	return x
}

func TestClassID(t *testing.T) {
	for range 100 {
		id := uuid.NewString()
		class := environments.DefaultClassID(id)
		if class == id {
			t.Fatalf("class ID equals runner ID %s", id)
		}
		u, err := uuid.Parse(class)
		if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
			t.Fatalf("class ID %s of runner %s is not a v4 UUID: %v", class, id, err)
		}
		if got := environments.RunnerOfClass(class); got != id {
			t.Fatalf("RunnerOfClass(DefaultClassID(%s)) = %s", id, got)
		}
	}
}

func TestCreate_Validation(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "validation")
	class := environments.DefaultClassID(r.ID)
	withGit := func(g environments.Git) environments.CreateInput {
		in := gitInput(class)
		in.Spec.Content.Initializers[0].Git = &g
		return in
	}
	remote := "https://github.com/runyard/demo.git"
	name := func(s string) *string { return &s }
	tests := []struct {
		name  string
		in    environments.CreateInput
		code  apperr.Code // empty: must succeed
		field string
		check func(t *testing.T, x *environments.Environment)
	}{
		{name: "OK", in: gitInput(class), check: func(t *testing.T, x *environments.Environment) {
			g := x.Spec.Content.Initializers[0].Git
			switch {
			case x.Name != "demo", x.ContextURL != remote, x.RunnerID != r.ID, x.RunnerKind != runners.KindLocal:
				t.Fatalf("metadata: %+v", x)
			case x.Spec.DesiredPhase != environments.PhaseRunning, x.Spec.SpecVersion != 1, x.Status.Phase != environments.PhaseCreating:
				t.Fatalf("phases: spec %+v status %+v", x.Spec, x.Status)
			case g.TargetMode != environments.CloneTargetRemoteHead, g.CheckoutLocation != "demo":
				t.Fatalf("git defaults: %+v", g)
			case x.Spec.AutomationsFile.Path != environments.DefaultAutomationsFilePath:
				t.Fatalf("automations file path %q", x.Spec.AutomationsFile.Path)
			case x.LastStartedAt == nil || !x.LastStartedAt.Equal(x.CreatedAt):
				t.Fatalf("lastStartedAt %v, createdAt %v", x.LastStartedAt, x.CreatedAt)
			}
		}},
		{name: "OKEmptyWorkspace", in: environments.CreateInput{Spec: environments.Spec{Machine: environments.Machine{Class: class}}},
			check: func(t *testing.T, x *environments.Environment) {
				if !strings.HasPrefix(x.Name, "environment-") || x.ContextURL != "" || len(x.Spec.Content.Initializers) != 0 {
					t.Fatalf("empty workspace: %+v", x)
				}
			}},
		{name: "OKStopped", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.DesiredPhase = environments.PhaseStopped
			in.Name = name("my env")
			in.Spec.AutomationsFile = environments.AutomationsFile{Path: "./ci//automations.yaml", TriggerFilter: []spec.Trigger{spec.TriggerManual}}
			return in
		}(), check: func(t *testing.T, x *environments.Environment) {
			if x.Spec.DesiredPhase != environments.PhaseStopped || x.LastStartedAt != nil || x.Name != "my env" || x.Spec.AutomationsFile.Path != "ci/automations.yaml" {
				t.Fatalf("stopped: %+v", x)
			}
		}},
		{name: "OKBranch", in: withGit(environments.Git{RemoteURI: "git@github.com:runyard/demo.git", TargetMode: environments.CloneTargetRemoteBranch, CloneTarget: "feature/x", CheckoutLocation: "src/demo"})},
		{name: "OKCommit", in: withGit(environments.Git{RemoteURI: "file:///srv/git/demo", TargetMode: environments.CloneTargetRemoteCommit, CloneTarget: "0123abcd"}),
			check: func(t *testing.T, x *environments.Environment) {
				if got := x.Spec.Content.Initializers[0].Git.CheckoutLocation; got != "demo" {
					t.Fatalf("checkout location %q", got)
				}
			}},
		{name: "ErrClassMissing", in: environments.CreateInput{}, code: apperr.CodeInvalid, field: "spec.machine.class"},
		{name: "ErrClassNotUUID", in: gitInput("large"), code: apperr.CodeInvalid, field: "spec.machine.class"},
		{name: "ErrClassUnknown", in: gitInput(uuid.NewString()), code: apperr.CodeInvalid, field: "spec.machine.class"},
		{name: "ErrClassIsRunnerID", in: gitInput(r.ID), code: apperr.CodeInvalid, field: "spec.machine.class"},
		{name: "ErrDesiredPhase", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.DesiredPhase = environments.PhaseDeleted
			return in
		}(), code: apperr.CodeInvalid, field: "spec.desiredPhase"},
		{name: "ErrBlankName", in: func() environments.CreateInput { in := gitInput(class); in.Name = name("  "); return in }(), code: apperr.CodeInvalid, field: "name"},
		{name: "ErrRemoteMissing", in: withGit(environments.Git{}), code: apperr.CodeInvalid, field: "spec.content.initializer.specs[0].git.remoteUri"},
		{name: "ErrRemoteOption", in: withGit(environments.Git{RemoteURI: "--upload-pack=touch /tmp/x"}), code: apperr.CodeInvalid, field: "remoteUri"},
		{name: "ErrRemoteScheme", in: withGit(environments.Git{RemoteURI: "ext::sh -c touch"}), code: apperr.CodeInvalid, field: "remoteUri"},
		{name: "ErrRemoteNoHost", in: withGit(environments.Git{RemoteURI: "https:///x.git"}), code: apperr.CodeInvalid, field: "remoteUri"},
		{name: "ErrTargetMode", in: withGit(environments.Git{RemoteURI: remote, TargetMode: "CLONE_TARGET_MODE_SIDEWAYS"}), code: apperr.CodeInvalid, field: "targetMode"},
		{name: "ErrBranchMissing", in: withGit(environments.Git{RemoteURI: remote, TargetMode: environments.CloneTargetRemoteBranch}), code: apperr.CodeInvalid, field: "cloneTarget"},
		{name: "ErrBranchOption", in: withGit(environments.Git{RemoteURI: remote, TargetMode: environments.CloneTargetRemoteTag, CloneTarget: "-x"}), code: apperr.CodeInvalid, field: "cloneTarget"},
		{name: "ErrBranchDots", in: withGit(environments.Git{RemoteURI: remote, TargetMode: environments.CloneTargetLocalBranch, CloneTarget: "a..b"}), code: apperr.CodeInvalid, field: "cloneTarget"},
		{name: "ErrCommit", in: withGit(environments.Git{RemoteURI: remote, TargetMode: environments.CloneTargetRemoteCommit, CloneTarget: "main"}), code: apperr.CodeInvalid, field: "cloneTarget"},
		{name: "ErrCheckoutAbsolute", in: withGit(environments.Git{RemoteURI: remote, CheckoutLocation: "/etc"}), code: apperr.CodeInvalid, field: "checkoutLocation"},
		{name: "ErrCheckoutClimbs", in: withGit(environments.Git{RemoteURI: remote, CheckoutLocation: "a/../../b"}), code: apperr.CodeInvalid, field: "checkoutLocation"},
		{name: "ErrCheckoutTwice", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.Content.Initializers = append(in.Spec.Content.Initializers, environments.Initializer{Git: &environments.Git{RemoteURI: "https://example.com/other/demo"}})
			return in
		}(), code: apperr.CodeInvalid, field: "specs[1].git.checkoutLocation"},
		{name: "ErrNoGit", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.Content.Initializers[0].Git = nil
			return in
		}(), code: apperr.CodeInvalid, field: "specs[0]"},
		{name: "ErrContextURL", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.Content.Initializers[0] = environments.Initializer{ContextURL: name("https://github.com/x")}
			return in
		}(), code: apperr.CodeInvalid, field: "spec.content.initializer.specs[0].contextUrl.url"},
		{name: "ErrAutomationsPath", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.AutomationsFile.Path = "../secrets.yaml"
			return in
		}(), code: apperr.CodeInvalid, field: "spec.automationsFile.automationsFilePath"},
		{name: "ErrTriggerFilter", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.AutomationsFile.TriggerFilter = []spec.Trigger{"onSave"}
			return in
		}(), code: apperr.CodeInvalid, field: "spec.automationsFile.triggerFilter[0]"},
		{name: "ErrGitEmail", in: func() environments.CreateInput {
			in := gitInput(class)
			in.Spec.Content.GitEmail = "a\nb"
			return in
		}(), code: apperr.CodeInvalid, field: "spec.content.gitEmail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := e.svc.Create(e.admin, tt.in)
			if tt.code != "" {
				wantErr(t, err, tt.code, tt.field)
				return
			}
			must(t, err, "create")
			if err := uuid.Validate(x.ID); err != nil {
				t.Fatalf("id %q: %v", x.ID, err)
			}
			got, err := e.svc.Get(e.admin, x.ID)
			must(t, err, "get")
			if !reflect.DeepEqual(got, x) {
				t.Fatalf("reread differs:\n got %+v\nwant %+v", got, x)
			}
			if tt.check != nil {
				tt.check(t, x)
			}
		})
	}
}

func TestCreate_RunnerState(t *testing.T) {
	e := setup(t)
	draining := e.runner(t, "draining")
	_, err := e.runners.Update(e.admin, draining.ID, runners.Update{DesiredPhase: ptr(runners.PhaseInactive)})
	must(t, err, "drain")
	_, err = e.svc.Create(e.admin, gitInput(environments.DefaultClassID(draining.ID)))
	wantErr(t, err, apperr.CodeFailedPrecondition, "draining")

	deleting := e.runner(t, "deleting")
	must(t, e.runners.Delete(e.admin, deleting.ID, false), "delete runner")
	_, err = e.svc.Create(e.admin, gitInput(environments.DefaultClassID(deleting.ID)))
	wantErr(t, err, apperr.CodeFailedPrecondition, "being deleted")

	// A runner that never connected takes environments: they wait in
	// CREATING until it does.
	fresh, _, err := e.runners.Create(e.admin, runners.CreateInput{Name: "fresh", Provider: runners.ProviderLinuxHost})
	must(t, err, "create runner")
	x, err := e.svc.Create(e.admin, gitInput(environments.DefaultClassID(fresh.ID)))
	must(t, err, "create on a runner that never connected")
	if x.Status.Phase != environments.PhaseCreating {
		t.Fatalf("phase %s", x.Status.Phase)
	}
	if got := e.changes[len(e.changes)-1]; got != fresh.ID {
		t.Fatalf("Changed for %q, want the runner %q", got, fresh.ID)
	}
}

func ptr[T any](v T) *T { return &v }

func TestScopes(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "scopes")
	x := e.create(t, r)
	read := e.keyCtx(identity.ScopeEnvironmentsRead)
	runnersOnly := e.keyCtx(identity.ScopeRunnersRead, identity.ScopeRunnersWrite)
	_, err := e.svc.Get(read, x.ID)
	must(t, err, "get with environments:read")
	_, _, err = e.svc.ListClasses(read, environments.ClassFilter{}, paging.Page{Limit: 10})
	must(t, err, "list classes with environments:read")
	_, err = e.svc.Create(read, gitInput(environments.DefaultClassID(r.ID)))
	wantErr(t, err, apperr.CodePermissionDenied, "environments:write")
	wantErr(t, e.svc.Stop(read, x.ID), apperr.CodePermissionDenied, "environments:write")
	wantErr(t, e.svc.Delete(read, x.ID, true), apperr.CodePermissionDenied, "environments:write")
	_, err = e.svc.Get(runnersOnly, x.ID)
	wantErr(t, err, apperr.CodePermissionDenied, "environments:read")
	_, err = e.svc.Get(e.runnerCtx(r), x.ID)
	wantErr(t, err, apperr.CodePermissionDenied, "runner tokens")
	_, err = e.svc.Get(ctx, x.ID)
	wantErr(t, err, apperr.CodeUnauthenticated)
	// Only runners report and read their desired state.
	_, err = e.svc.Desired(e.admin)
	wantErr(t, err, apperr.CodePermissionDenied)
	_, err = e.svc.ReportStatus(e.admin, x.ID, environments.Status{StatusVersion: 1, Phase: environments.PhaseRunning})
	wantErr(t, err, apperr.CodePermissionDenied)
}

func TestOrganizationIsolation(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "isolation")
	x := e.create(t, r)
	otherOrg := &identity.Organization{ID: uuid.NewString(), Name: "other", CreatedAt: time.Now().UTC()}
	must(t, e.db.CreateOrganization(ctx, otherOrg), "create organization")
	other := identity.NewContext(ctx, &identity.Caller{OrgID: otherOrg.ID, Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}, Scopes: []identity.Scope{identity.ScopeAdmin}})
	_, err := e.svc.Get(other, x.ID)
	wantErr(t, err, apperr.CodeNotFound)
	wantErr(t, e.svc.Start(other, x.ID), apperr.CodeNotFound)
	wantErr(t, e.svc.Stop(other, x.ID), apperr.CodeNotFound)
	wantErr(t, e.svc.Delete(other, x.ID, true), apperr.CodeNotFound)
	items, _, err := e.svc.List(other, environments.ListFilter{}, paging.Page{Limit: 10})
	must(t, err, "list")
	if len(items) != 0 {
		t.Fatalf("another organization lists %d environments", len(items))
	}
	classes, _, err := e.svc.ListClasses(other, environments.ClassFilter{RunnerIDs: []string{r.ID}}, paging.Page{Limit: 10})
	must(t, err, "list classes")
	if len(classes) != 0 {
		t.Fatalf("another organization lists the classes of our runner")
	}
	// Another organization's runner cannot be named through its class.
	_, err = e.svc.Create(other, gitInput(environments.DefaultClassID(r.ID)))
	wantErr(t, err, apperr.CodeInvalid, "spec.machine.class")
}

func TestStartStop(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "startstop")
	x := e.create(t, r)
	e.changes = nil
	tests := []struct {
		name        string
		call        func(context.Context, string) error
		wantPhase   environments.Phase
		wantVersion uint64
		notified    bool
	}{
		{"StartRunning", e.svc.Start, environments.PhaseRunning, 1, false},
		{"Stop", e.svc.Stop, environments.PhaseStopped, 2, true},
		{"StopAgain", e.svc.Stop, environments.PhaseStopped, 2, false},
		{"Start", e.svc.Start, environments.PhaseRunning, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.changes = nil
			before, err := e.svc.Get(e.admin, x.ID)
			must(t, err, "get")
			must(t, tt.call(e.admin, x.ID), tt.name)
			got, err := e.svc.Get(e.admin, x.ID)
			must(t, err, "get")
			if got.Spec.DesiredPhase != tt.wantPhase || got.Spec.SpecVersion != tt.wantVersion {
				t.Fatalf("desired %s version %d, want %s %d", got.Spec.DesiredPhase, got.Spec.SpecVersion, tt.wantPhase, tt.wantVersion)
			}
			// Status is the runner's: starting or stopping does not touch it.
			if got.Status.Phase != environments.PhaseCreating {
				t.Fatalf("status phase %s", got.Status.Phase)
			}
			if (len(e.changes) > 0) != tt.notified {
				t.Fatalf("Changed calls %v, want notified %v", e.changes, tt.notified)
			}
			if tt.notified && tt.wantPhase == environments.PhaseRunning && !got.LastStartedAt.After(*before.LastStartedAt) && !got.LastStartedAt.Equal(*before.LastStartedAt) {
				t.Fatalf("lastStartedAt not moved: %v -> %v", before.LastStartedAt, got.LastStartedAt)
			}
		})
	}
	wantErr(t, e.svc.Start(e.admin, uuid.NewString()), apperr.CodeNotFound)
	wantErr(t, e.svc.Stop(e.admin, "nope"), apperr.CodeInvalid, "environmentId")
}

func report(t *testing.T, e *env, r *runners.Runner, id string, version uint64, phase environments.Phase) *environments.Environment {
	t.Helper()
	x, err := e.svc.ReportStatus(e.runnerCtx(r), id, environments.Status{StatusVersion: version, Phase: phase})
	must(t, err, "report "+string(phase))
	return x
}

func TestDelete(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "delete")
	t.Run("NeverPickedUp", func(t *testing.T) {
		x := e.create(t, r)
		must(t, e.svc.Delete(e.admin, x.ID, false), "delete")
		_, err := e.svc.Get(e.admin, x.ID)
		wantErr(t, err, apperr.CodeNotFound)
		wantErr(t, e.svc.Delete(e.admin, x.ID, false), apperr.CodeNotFound)
	})
	t.Run("PickedUp", func(t *testing.T) {
		x := e.create(t, r)
		report(t, e, r, x.ID, 1, environments.PhaseRunning)
		e.changes = nil
		must(t, e.svc.Delete(e.admin, x.ID, false), "delete")
		got, err := e.svc.Get(e.admin, x.ID)
		must(t, err, "a picked-up environment stays until its runner deletes it")
		if got.Spec.DesiredPhase != environments.PhaseDeleted || got.Status.Phase != environments.PhaseRunning || len(e.changes) != 1 {
			t.Fatalf("after delete: spec %+v, status %+v, changes %v", got.Spec, got.Status, e.changes)
		}
		must(t, e.svc.Delete(e.admin, x.ID, false), "delete again")
		wantErr(t, e.svc.Start(e.admin, x.ID), apperr.CodeFailedPrecondition, "being deleted")
		wantErr(t, e.svc.Stop(e.admin, x.ID), apperr.CodeFailedPrecondition, "being deleted")
		report(t, e, r, x.ID, 2, environments.PhaseDeleting)
		_, err = e.svc.Get(e.admin, x.ID)
		must(t, err, "DELETING keeps it")
		last := report(t, e, r, x.ID, 3, environments.PhaseDeleted)
		if last.Status.Phase != environments.PhaseDeleted {
			t.Fatalf("last report returned %s", last.Status.Phase)
		}
		_, err = e.svc.Get(e.admin, x.ID)
		wantErr(t, err, apperr.CodeNotFound)
	})
	t.Run("Force", func(t *testing.T) {
		x := e.create(t, r)
		report(t, e, r, x.ID, 1, environments.PhaseRunning)
		must(t, e.svc.Delete(e.admin, x.ID, true), "force delete")
		_, err := e.svc.Get(e.admin, x.ID)
		wantErr(t, err, apperr.CodeNotFound)
	})
	t.Run("RunnerDeleted", func(t *testing.T) {
		other := e.runner(t, "doomed")
		x := e.create(t, other)
		keep := e.create(t, r)
		n, err := e.svc.RunnerDeleted(ctx, e.orgID, other.ID)
		must(t, err, "runner deleted")
		if n != 1 {
			t.Fatalf("removed %d", n)
		}
		_, err = e.svc.Get(e.admin, x.ID)
		wantErr(t, err, apperr.CodeNotFound)
		_, err = e.svc.Get(e.admin, keep.ID)
		must(t, err, "another runner's environment stays")
	})
}

func TestReportStatus(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "report")
	stranger := e.runner(t, "stranger")
	x := e.create(t, r)
	full := environments.Status{
		StatusVersion: 10, Phase: environments.PhaseRunning,
		FailureMessage: []string{"clone failed: repository not found"},
		RunnerACK:      &environments.RunnerACK{SpecVersion: 1, StatusCode: "STATUS_CODE_OK"},
		Content:        &environments.ContentStatus{Phase: "CONTENT_PHASE_READY", Location: "/var/lib/runyard/x"},
	}
	got, err := e.svc.ReportStatus(e.runnerCtx(r), x.ID, full)
	must(t, err, "report")
	if !reflect.DeepEqual(got.Status, full) {
		t.Fatalf("status %+v, want %+v", got.Status, full)
	}
	// Older and equal versions are dropped.
	for _, v := range []uint64{9, 10} {
		got, err := e.svc.ReportStatus(e.runnerCtx(r), x.ID, environments.Status{StatusVersion: v, Phase: environments.PhaseStopped})
		must(t, err, "stale report")
		if got.Status.Phase != environments.PhaseRunning || got.Status.StatusVersion != 10 {
			t.Fatalf("a stale report (version %d) changed the status: %+v", v, got.Status)
		}
	}
	tests := []struct {
		name  string
		ctx   context.Context
		id    string
		st    environments.Status
		code  apperr.Code
		field string
	}{
		{"ErrOtherRunner", e.runnerCtx(stranger), x.ID, environments.Status{StatusVersion: 11, Phase: environments.PhaseStopped}, apperr.CodeNotFound, ""},
		{"ErrMissing", e.runnerCtx(r), uuid.NewString(), environments.Status{StatusVersion: 11, Phase: environments.PhaseStopped}, apperr.CodeNotFound, ""},
		{"ErrNoVersion", e.runnerCtx(r), x.ID, environments.Status{Phase: environments.PhaseStopped}, apperr.CodeInvalid, "status.statusVersion"},
		{"ErrPhase", e.runnerCtx(r), x.ID, environments.Status{StatusVersion: 11, Phase: "ENVIRONMENT_PHASE_NAPPING"}, apperr.CodeInvalid, "status.phase"},
		{"ErrUnspecifiedPhase", e.runnerCtx(r), x.ID, environments.Status{StatusVersion: 11, Phase: environments.PhaseUnspecified}, apperr.CodeInvalid, "status.phase"},
		{"ErrContentPhase", e.runnerCtx(r), x.ID, environments.Status{StatusVersion: 11, Phase: environments.PhaseRunning, Content: &environments.ContentStatus{Phase: "READY"}}, apperr.CodeInvalid, "status.content.phase"},
		{"ErrMessage", e.runnerCtx(r), x.ID, environments.Status{StatusVersion: 11, Phase: environments.PhaseRunning, FailureMessage: []string{"a\x00"}}, apperr.CodeInvalid, "status.failureMessage[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.ReportStatus(tt.ctx, tt.id, tt.st)
			wantErr(t, err, tt.code, tt.field)
		})
	}
}

func TestDesired(t *testing.T) {
	e := setup(t)
	r := e.runner(t, "desired")
	other := e.runner(t, "other")
	a := e.create(t, r)
	b := e.create(t, r)
	e.create(t, other)
	must(t, e.svc.Stop(e.admin, b.ID), "stop")
	got, err := e.svc.Desired(e.runnerCtx(r))
	must(t, err, "desired")
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("desired %v, want [%s %s]", ids(got), a.ID, b.ID)
	}
	if got[1].Spec.DesiredPhase != environments.PhaseStopped {
		t.Fatalf("desired phase of the stopped one: %s", got[1].Spec.DesiredPhase)
	}
}

func ids(es []*environments.Environment) []string {
	out := make([]string, len(es))
	for i, x := range es {
		out[i] = x.ID
	}
	return out
}

func TestList(t *testing.T) {
	e := setup(t)
	r1 := e.runner(t, "list-one")
	r2 := e.runner(t, "list-two")
	var made []*environments.Environment
	for i := range 7 {
		r := r1
		if i%2 == 1 {
			r = r2
		}
		made = append(made, e.create(t, r))
	}
	report(t, e, r2, made[1].ID, 1, environments.PhaseRunning)
	walk := func(f environments.ListFilter, size int32) []string {
		t.Helper()
		var out []string
		token := ""
		for range 20 {
			page, err := paging.Parse(token, size)
			must(t, err, "parse page")
			items, next, err := e.svc.List(e.admin, f, page)
			must(t, err, "list")
			if len(items) > int(size) {
				t.Fatalf("page of %d items, size %d", len(items), size)
			}
			out = append(out, ids(items)...)
			if token = next; token == "" {
				return out
			}
		}
		t.Fatal("too many pages")
		return nil
	}
	rev := func(idx ...int) []string {
		var out []string
		for i := len(idx) - 1; i >= 0; i-- {
			out = append(out, made[idx[i]].ID)
		}
		return out
	}
	tests := []struct {
		name string
		f    environments.ListFilter
		want []string
	}{
		{"All", environments.ListFilter{}, rev(0, 1, 2, 3, 4, 5, 6)},
		{"Runner", environments.ListFilter{RunnerIDs: []string{r2.ID}}, rev(1, 3, 5)},
		{"Phase", environments.ListFilter{Phases: []environments.Phase{environments.PhaseRunning}}, rev(1)},
		{"Kind", environments.ListFilter{RunnerKinds: []runners.Kind{runners.KindRemote}}, nil},
	}
	for _, tt := range tests {
		for _, size := range []int32{1, 2, 3, 100} {
			if got := walk(tt.f, size); !reflect.DeepEqual(got, tt.want) && (len(got) != 0 || len(tt.want) != 0) {
				t.Fatalf("%s, page size %d: got %v, want %v", tt.name, size, got, tt.want)
			}
		}
	}
	for _, tt := range []struct {
		name  string
		f     environments.ListFilter
		field string
	}{
		{"ErrRunnerID", environments.ListFilter{RunnerIDs: []string{"x"}}, "filter.runnerIds[0]"},
		{"ErrCreatorID", environments.ListFilter{CreatorIDs: []string{"x"}}, "filter.creatorIds[0]"},
		{"ErrPhase", environments.ListFilter{Phases: []environments.Phase{"X"}}, "filter.statusPhases[0]"},
		{"ErrKind", environments.ListFilter{RunnerKinds: []runners.Kind{"X"}}, "filter.runnerKinds[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.svc.List(e.admin, tt.f, paging.Page{Limit: 10})
			wantErr(t, err, apperr.CodeInvalid, tt.field)
		})
	}
}

func TestListClasses(t *testing.T) {
	e := setup(t)
	active := e.runner(t, "active")
	fresh, _, err := e.runners.Create(e.admin, runners.CreateInput{Name: "fresh", Provider: runners.ProviderAWSEC2})
	must(t, err, "create runner")
	deleting := e.runner(t, "deleting")
	must(t, e.runners.Delete(e.admin, deleting.ID, false), "delete runner")
	walk := func(f environments.ClassFilter, size int32) []*environments.Class {
		t.Helper()
		var out []*environments.Class
		token := ""
		for range 20 {
			page, err := paging.Parse(token, size)
			must(t, err, "parse page")
			items, next, err := e.svc.ListClasses(e.admin, f, page)
			must(t, err, "list classes")
			out = append(out, items...)
			if token = next; token == "" {
				return out
			}
		}
		t.Fatal("too many pages")
		return nil
	}
	runnerIDs := func(cs []*environments.Class) []string {
		var out []string
		for _, c := range cs {
			if c.ID != environments.DefaultClassID(c.RunnerID) {
				t.Fatalf("class %s of runner %s is not its default class", c.ID, c.RunnerID)
			}
			out = append(out, c.RunnerID)
		}
		return out
	}
	yes, no := ptr(true), ptr(false)
	tests := []struct {
		name string
		f    environments.ClassFilter
		want []string
	}{
		{"All", environments.ClassFilter{}, []string{active.ID, fresh.ID, deleting.ID}},
		{"Runners", environments.ClassFilter{RunnerIDs: []string{deleting.ID, active.ID, uuid.NewString(), active.ID}}, []string{active.ID, deleting.ID}},
		{"Enabled", environments.ClassFilter{Enabled: yes}, []string{active.ID, fresh.ID}},
		{"Disabled", environments.ClassFilter{Enabled: no}, []string{deleting.ID}},
		{"CanCreate", environments.ClassFilter{CanCreate: yes}, []string{active.ID}},
		{"CannotCreate", environments.ClassFilter{CanCreate: no}, []string{fresh.ID, deleting.ID}},
		{"Kind", environments.ClassFilter{RunnerKinds: []runners.Kind{runners.KindRemote}}, []string{fresh.ID}},
		{"Provider", environments.ClassFilter{RunnerProviders: []runners.Provider{runners.ProviderLinuxHost}}, []string{active.ID, deleting.ID}},
		{"RunnersAndEnabled", environments.ClassFilter{RunnerIDs: []string{deleting.ID, fresh.ID}, Enabled: yes}, []string{fresh.ID}},
	}
	for _, tt := range tests {
		for _, size := range []int32{1, 2, 100} {
			if got := runnerIDs(walk(tt.f, size)); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%s, page size %d: got %v, want %v", tt.name, size, got, tt.want)
			}
		}
	}
	_, _, err = e.svc.ListClasses(e.admin, environments.ClassFilter{RunnerIDs: []string{"nope"}}, paging.Page{Limit: 10})
	wantErr(t, err, apperr.CodeInvalid, "filter.runnerIds[0]")
}
