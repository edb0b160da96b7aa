package runners_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

var ctx = context.Background()

// setup returns a registry on a real SQLite store and a context carrying an
// admin caller.
func setup(t *testing.T) (*runners.Service, *sqlstore.DB, context.Context) {
	t.Helper()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ids := identity.NewService(db)
	const admin = "admin-value-0123456789"
	if _, err := ids.Bootstrap(ctx, admin); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c, err := ids.Authenticate(ctx, admin)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return runners.NewService(db), db, identity.NewContext(ctx, c)
}

func i32(v int32) *int32 { return &v }

func TestCreate_Validation(t *testing.T) {
	svc, _, admin := setup(t)
	managerID := uuid.NewString()
	tests := []struct {
		name  string
		in    runners.CreateInput
		field string // empty: must succeed
		check func(t *testing.T, r *runners.Runner)
	}{
		{name: "OK", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost}, check: func(t *testing.T, r *runners.Runner) {
			if r.Kind != runners.KindLocal || r.Spec.DesiredPhase != runners.PhaseActive || r.Status.Phase != runners.PhaseCreated {
				t.Fatalf("defaults: %+v", r)
			}
		}},
		{name: "OKKindOnly", in: runners.CreateInput{Name: "kind-only", Kind: runners.KindRemote}, check: func(t *testing.T, r *runners.Runner) {
			if r.Provider != runners.ProviderUnspecified || r.Kind != runners.KindRemote {
				t.Fatalf("kind only: %+v", r)
			}
		}},
		{name: "OKMaxName", in: runners.CreateInput{Name: strings.Repeat("n", 127), Provider: runners.ProviderGCP}},
		{name: "OKManaged", in: runners.CreateInput{Name: "managed", Provider: runners.ProviderManaged, RunnerManagerID: managerID}, check: func(t *testing.T, r *runners.Runner) {
			if r.RunnerManagerID != managerID || r.Kind != runners.KindRemote {
				t.Fatalf("managed: %+v", r)
			}
		}},
		{name: "OKUpdateWindowDefaultEnd", in: runners.CreateInput{Name: "window", Provider: runners.ProviderAWSEC2,
			UpdateWindow: &runners.UpdateWindowInput{StartHour: i32(23)}}, check: func(t *testing.T, r *runners.Runner) {
			if w := r.Spec.Configuration.UpdateWindow; w == nil || w.StartHour != 23 || w.EndHour != 1 {
				t.Fatalf("window: %+v", w)
			}
		}},
		{name: "OKUpdateWindowEndZero", in: runners.CreateInput{Name: "window0", Provider: runners.ProviderAWSEC2,
			UpdateWindow: &runners.UpdateWindowInput{StartHour: i32(5), EndHour: i32(0)}}, check: func(t *testing.T, r *runners.Runner) {
			if w := r.Spec.Configuration.UpdateWindow; w.EndHour != 0 {
				t.Fatalf("explicit endHour 0 became %d", w.EndHour)
			}
		}},
		{name: "ErrNameTooShort", in: runners.CreateInput{Name: "ab", Provider: runners.ProviderLinuxHost}, field: "name"},
		{name: "ErrNameTooLong", in: runners.CreateInput{Name: strings.Repeat("n", 128), Provider: runners.ProviderLinuxHost}, field: "name"},
		{name: "ErrNameSpaces", in: runners.CreateInput{Name: " abc", Provider: runners.ProviderLinuxHost}, field: "name"},
		{name: "ErrNameControl", in: runners.CreateInput{Name: "ab\nc", Provider: runners.ProviderLinuxHost}, field: "name"},
		{name: "ErrKindAndProvider", in: runners.CreateInput{Name: "abc", Kind: runners.KindLocal, Provider: runners.ProviderLinuxHost}, field: "kind"},
		{name: "ErrNeither", in: runners.CreateInput{Name: "abc"}, field: "provider"},
		{name: "ErrUnknownProvider", in: runners.CreateInput{Name: "abc", Provider: "RUNNER_PROVIDER_MARS"}, field: "provider"},
		{name: "ErrManagedWithoutManager", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderManaged}, field: "runnerManagerId"},
		{name: "ErrManagerNotUUID", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderManaged, RunnerManagerID: "x"}, field: "runnerManagerId"},
		{name: "ErrManagerOnHost", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost, RunnerManagerID: managerID}, field: "runnerManagerId"},
		{name: "ErrDesiredDeleted", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{DesiredPhase: runners.PhaseDeleted}}, field: "spec.desiredPhase"},
		{name: "ErrWindowStart", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			UpdateWindow: &runners.UpdateWindowInput{StartHour: i32(24)}}, field: "spec.configuration.updateWindow.startHour"},
		{name: "ErrWindowNoStart", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			UpdateWindow: &runners.UpdateWindowInput{EndHour: i32(3)}}, field: "spec.configuration.updateWindow.startHour"},
		{name: "ErrWindowEnd", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			UpdateWindow: &runners.UpdateWindowInput{StartHour: i32(1), EndHour: i32(-1)}}, field: "spec.configuration.updateWindow.endHour"},
		{name: "ErrMetricsURL", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{Configuration: runners.Configuration{Metrics: runners.Metrics{URL: "ftp://x"}}}}, field: "spec.configuration.metrics.url"},
		{name: "ErrRegion", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{Configuration: runners.Configuration{Region: "us west"}}}, field: "spec.configuration.region"},
		{name: "ErrLogLevel", in: runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{Configuration: runners.Configuration{LogLevel: "LOUD"}}}, field: "spec.configuration.logLevel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, exchange, err := svc.Create(admin, tt.in)
			if tt.field != "" {
				e := apperr.As(err)
				if err == nil || e.Code != apperr.CodeInvalid || e.Field != tt.field {
					t.Fatalf("got %v, want invalid_argument on %s", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			if !strings.HasPrefix(exchange, identity.PrefixExchangeToken) {
				t.Fatalf("exchange token %q", exchange)
			}
			got, err := svc.Get(admin, r.ID)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			if got.Seq != r.Seq || !got.CreatedAt.Equal(r.CreatedAt) {
				t.Fatalf("reread differs: %+v vs %+v", got, r)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
		})
	}
	// Nothing invalid was stored.
	items, _, err := svc.List(admin, runners.ListFilter{}, paging.Page{Limit: 100})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if got, want := len(items), 6; got != want {
		t.Fatalf("%d runners stored, want %d", got, want)
	}
}

func TestUpdate(t *testing.T) {
	svc, db, admin := setup(t)
	r, _, err := svc.Create(admin, runners.CreateInput{Name: "host", Provider: runners.ProviderLinuxHost,
		Spec: runners.Spec{Configuration: runners.Configuration{Metrics: runners.Metrics{URL: "https://m", Password: "old"}}}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	debug, inactive, name, pw := runners.LogLevelDebug, runners.PhaseInactive, "renamed", "new"
	got, err := svc.Update(admin, r.ID, runners.Update{Name: &name, DesiredPhase: &inactive,
		Config: runners.ConfigUpdate{LogLevel: &debug, Metrics: runners.MetricsUpdate{Password: &pw},
			UpdateWindow: &runners.UpdateWindowInput{StartHour: i32(22)}}})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	c := got.Spec.Configuration
	if got.Name != name || got.Spec.DesiredPhase != inactive || c.LogLevel != debug || c.Metrics.Password != "new" ||
		c.Metrics.URL != "https://m" || c.UpdateWindow.EndHour != 0 || got.UpdatedAt.Before(r.UpdatedAt) {
		t.Fatalf("after update: %+v", got)
	}
	deleted := runners.PhaseDeleted
	_, err = svc.Update(admin, r.ID, runners.Update{DesiredPhase: &deleted})
	if e := apperr.As(err); e.Code != apperr.CodeInvalid || e.Field != "spec.desiredPhase" {
		t.Fatalf("desired DELETED: %v", err)
	}
	// A runner being deleted refuses changes.
	if _, err := db.UpdateRunner(ctx, r.OrgID, r.ID, func(r *runners.Runner) error {
		r.Status.Phase = runners.PhaseDeleting
		return nil
	}); err != nil {
		t.Fatalf("mark deleting: %v", err)
	}
	_, err = svc.Update(admin, r.ID, runners.Update{Name: &name})
	if apperr.CodeOf(err) != apperr.CodeFailedPrecondition {
		t.Fatalf("update of a deleting runner: %v", err)
	}
	_, err = svc.CreateToken(admin, r.ID)
	if apperr.CodeOf(err) != apperr.CodeFailedPrecondition {
		t.Fatalf("token for a deleting runner: %v", err)
	}
}

func TestDelete(t *testing.T) {
	svc, db, admin := setup(t)
	// deleted records the Deleted hook's calls: every removal, never a
	// runner that only waits for its daemon.
	var deleted []string
	svc.Deleted = func(orgID, runnerID string) { deleted = append(deleted, runnerID) }
	wantDeleted := func(t *testing.T, ids ...string) {
		t.Helper()
		if !slices.Equal(deleted, ids) {
			t.Fatalf("Deleted called for %v, want %v", deleted, ids)
		}
		deleted = nil
	}
	create := func(name string) *runners.Runner {
		r, _, err := svc.Create(admin, runners.CreateInput{Name: name, Provider: runners.ProviderLinuxHost})
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		return r
	}
	connect := func(r *runners.Runner) {
		if _, err := db.UpdateRunner(ctx, r.OrgID, r.ID, func(r *runners.Runner) error {
			r.ApplyReport(runners.Report{Version: "test", OS: "linux"}, time.Now().UTC().Truncate(time.Microsecond))
			return nil
		}); err != nil {
			t.Fatalf("simulate report: %v", err)
		}
	}
	t.Run("NeverConnectedGoesAtOnce", func(t *testing.T) {
		r := create("fresh")
		if err := svc.Delete(admin, r.ID, false); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := svc.Get(admin, r.ID); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("get after delete: %v", err)
		}
		wantDeleted(t, r.ID)
	})
	t.Run("ConnectedWaitsForDaemon", func(t *testing.T) {
		r := create("connected")
		connect(r)
		if err := svc.Delete(admin, r.ID, false); err != nil {
			t.Fatalf("delete: %v", err)
		}
		got, err := svc.Get(admin, r.ID)
		if err != nil || got.Status.Phase != runners.PhaseDeleting || got.Spec.DesiredPhase != runners.PhaseDeleted {
			t.Fatalf("after delete without force: %+v, %v", got, err)
		}
		// Deleting again is fine, and force removes it.
		if err := svc.Delete(admin, r.ID, false); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		wantDeleted(t)
		if err := svc.Delete(admin, r.ID, true); err != nil {
			t.Fatalf("force delete: %v", err)
		}
		if _, err := svc.Get(admin, r.ID); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("get after force delete: %v", err)
		}
		wantDeleted(t, r.ID)
	})
	t.Run("ForceConnected", func(t *testing.T) {
		r := create("forced")
		connect(r)
		if err := svc.Delete(admin, r.ID, true); err != nil {
			t.Fatalf("force delete: %v", err)
		}
		if _, err := svc.Get(admin, r.ID); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("get after force delete: %v", err)
		}
		wantDeleted(t, r.ID)
	})
	t.Run("ErrMissing", func(t *testing.T) {
		if err := svc.Delete(admin, uuid.NewString(), true); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("delete missing: %v", err)
		}
		wantDeleted(t)
	})
}

func TestRequiresScope(t *testing.T) {
	svc, _, _ := setup(t)
	reader := identity.NewContext(ctx, &identity.Caller{OrgID: "x", Scopes: []identity.Scope{identity.ScopeRunnersRead},
		Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}})
	if _, _, err := svc.Create(reader, runners.CreateInput{Name: "abc", Provider: runners.ProviderLinuxHost}); apperr.CodeOf(err) != apperr.CodePermissionDenied {
		t.Fatalf("create with read scope: %v", err)
	}
	if _, err := svc.Get(ctx, uuid.NewString()); apperr.CodeOf(err) != apperr.CodeUnauthenticated {
		t.Fatalf("get without caller: %v", err)
	}
	runner := identity.NewContext(ctx, &identity.Caller{OrgID: "x", RunnerID: "r",
		Subject: identity.Subject{ID: "r", Principal: identity.PrincipalRunner}, Scopes: []identity.Scope{identity.ScopeAdmin}})
	if _, _, err := svc.List(runner, runners.ListFilter{}, paging.Page{Limit: 1}); apperr.CodeOf(err) != apperr.CodePermissionDenied {
		t.Fatalf("list with a runner token: %v", err)
	}
}

func TestSweepAndRenew(t *testing.T) {
	svc, _, admin := setup(t)
	var gone, deleted []string
	svc.Gone = func(orgID, runnerID, reason string) { gone = append(gone, reason) }
	svc.Deleted = func(orgID, runnerID string) { deleted = append(deleted, runnerID) }
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := t0
	svc.Now = func() time.Time { return now }
	r, _, err := svc.Create(admin, runners.CreateInput{Name: "host", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	daemon := identity.NewContext(ctx, &identity.Caller{OrgID: r.OrgID, RunnerID: r.ID,
		Subject: identity.Subject{ID: r.ID, Principal: identity.PrincipalRunner}})
	if _, err := svc.Report(admin, runners.Report{}); apperr.CodeOf(err) != apperr.CodePermissionDenied {
		t.Fatalf("a user reporting for a runner: %v", err)
	}
	if _, err := svc.Report(daemon, runners.Report{PublicKey: []byte{1}}); apperr.CodeOf(err) != apperr.CodeInvalid {
		t.Fatalf("a 1-byte public key: %v", err)
	}
	if _, err := svc.Report(daemon, runners.Report{Version: "1"}); err != nil {
		t.Fatalf("report: %v", err)
	}
	const timeout = 30 * time.Second
	phase := func() (runners.Phase, string) {
		got, err := svc.Get(admin, r.ID)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		return got.Status.Phase, got.Status.Message
	}
	now = t0.Add(timeout - time.Second)
	if n, err := svc.SweepSilent(ctx, timeout); err != nil || n != 0 {
		t.Fatalf("sweep before the timeout marked %d runners (err %v)", n, err)
	}
	now = t0.Add(timeout + time.Second)
	if n, err := svc.SweepSilent(ctx, timeout); err != nil || n != 1 {
		t.Fatalf("sweep after the timeout marked %d runners, want 1 (err %v)", n, err)
	}
	if p, msg := phase(); p != runners.PhaseInactive || !strings.Contains(msg, "no renewal") {
		t.Fatalf("after the sweep: %s %q", p, msg)
	}
	// A lost runner's work is lost, but the runner and its environments
	// stay: it may come back.
	if !slices.Equal(gone, []string{"runner lost"}) || len(deleted) != 0 {
		t.Fatalf("after the sweep: Gone %v, Deleted %v", gone, deleted)
	}
	if err := svc.RecordRenewals(ctx, []runners.Renewal{{OrgID: r.OrgID, RunnerID: r.ID, At: now}}); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if p, msg := phase(); p != runners.PhaseActive || msg != "" {
		t.Fatalf("after a renewal: %s %q", p, msg)
	}
	// Deletion needs the runner to have been asked.
	if err := svc.ConfirmDeletion(daemon); apperr.CodeOf(err) != apperr.CodeFailedPrecondition {
		t.Fatalf("unrequested deletion: %v", err)
	}
	if err := svc.Delete(admin, r.ID, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if len(deleted) != 0 {
		t.Fatalf("Deleted called before the daemon confirmed: %v", deleted)
	}
	if err := svc.ConfirmDeletion(daemon); err != nil {
		t.Fatalf("confirm deletion: %v", err)
	}
	if !slices.Equal(deleted, []string{r.ID}) || !slices.Equal(gone, []string{"runner lost", "runner deleted"}) {
		t.Fatalf("after the confirmation: Deleted %v, Gone %v", deleted, gone)
	}
	if _, err := svc.Get(admin, r.ID); apperr.CodeOf(err) != apperr.CodeNotFound {
		t.Fatalf("after confirmation: %v", err)
	}
}
