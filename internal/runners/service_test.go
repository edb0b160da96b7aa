package runners_test

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
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
		{name: "ErrNameSlash", in: runners.CreateInput{Name: "team/runner", Provider: runners.ProviderLinuxHost}, field: "name"},
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
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	svc.Now = func() time.Time { return now }
	// deleted records the Deleted hook's calls: every deletion, never a
	// runner that only waits for its daemon, never a tombstone again.
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
			r.ApplyReport(runners.Report{Version: "test", OS: "linux"}, now)
			return nil
		}); err != nil {
			t.Fatalf("simulate report: %v", err)
		}
	}
	// wantTombstone checks that r reads as deleted at now, how saying how.
	wantTombstone := func(t *testing.T, r *runners.Runner, how string) {
		t.Helper()
		got, err := svc.Get(admin, r.ID)
		if err != nil {
			t.Fatalf("get the deleted runner: %v", err)
		}
		if got.Status.Phase != runners.PhaseDeleted || got.Spec.DesiredPhase != runners.PhaseDeleted ||
			!got.DeletedAt.Equal(now) || got.Status.Message != runners.DeletedMessage(now, how) {
			t.Fatalf("deleted runner: phase %s, desired %s, deleted at %v, message %q",
				got.Status.Phase, got.Spec.DesiredPhase, got.DeletedAt, got.Status.Message)
		}
	}
	t.Run("NeverConnectedGoesAtOnce", func(t *testing.T) {
		r := create("fresh")
		if err := svc.Delete(admin, r.ID, false); err != nil {
			t.Fatalf("delete: %v", err)
		}
		wantTombstone(t, r, "its runner never connected")
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
		// Deleting again is fine, and force deletes it.
		if err := svc.Delete(admin, r.ID, false); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		wantDeleted(t)
		if err := svc.Delete(admin, r.ID, true); err != nil {
			t.Fatalf("force delete: %v", err)
		}
		wantTombstone(t, r, "forced, without waiting for its runner to stop its work")
		wantDeleted(t, r.ID)
	})
	t.Run("ForceConnected", func(t *testing.T) {
		r := create("forced")
		connect(r)
		if err := svc.Delete(admin, r.ID, true); err != nil {
			t.Fatalf("force delete: %v", err)
		}
		wantTombstone(t, r, "forced, without waiting for its runner to stop its work")
		wantDeleted(t, r.ID)
	})
	t.Run("Tombstone", func(t *testing.T) {
		r, _, err := svc.Create(admin, runners.CreateInput{Name: "tomb", Provider: runners.ProviderLinuxHost,
			Spec: runners.Spec{Configuration: runners.Configuration{Metrics: runners.Metrics{Password: "pw"}}}})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		connect(r)
		if err := svc.Delete(admin, r.ID, true); err != nil {
			t.Fatalf("force delete: %v", err)
		}
		wantDeleted(t, r.ID)
		// Deleting a tombstone again succeeds and runs no hook again.
		for _, force := range []bool{false, true} {
			if err := svc.Delete(admin, r.ID, force); err != nil {
				t.Fatalf("delete a tombstone (force=%v): %v", force, err)
			}
		}
		wantDeleted(t)
		got, err := svc.Get(admin, r.ID)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.Spec.Configuration.Metrics.Password != "" {
			t.Error("the tombstone keeps the metrics password")
		}
		// Everything but Get treats it as gone.
		if _, err := svc.GetBySeq(admin, strconv.FormatInt(r.Seq, 10)); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("get by seq: %v", err)
		}
		if _, err := svc.GetByName(admin, "name", r.Name); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("get by name: %v", err)
		}
		list, _, err := svc.List(admin, runners.ListFilter{}, paging.Page{Limit: 100})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, l := range list {
			if l.ID == r.ID {
				t.Error("the tombstone is listed")
			}
		}
		name := "revived"
		if _, err := svc.Update(admin, r.ID, runners.Update{Name: &name}); apperr.CodeOf(err) != apperr.CodeFailedPrecondition ||
			!strings.Contains(err.Error(), "was deleted") {
			t.Errorf("update a tombstone: %v", err)
		}
		if _, err := svc.CreateToken(admin, r.ID); apperr.CodeOf(err) != apperr.CodeFailedPrecondition {
			t.Errorf("token for a tombstone: %v", err)
		}
		daemon := identity.NewContext(ctx, &identity.Caller{OrgID: r.OrgID, RunnerID: r.ID,
			Subject: identity.Subject{ID: r.ID, Principal: identity.PrincipalRunner}})
		if _, err := svc.Self(daemon); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("the daemon reads its deleted runner: %v", err)
		}
		if _, err := svc.Report(daemon, runners.Report{Version: "2"}); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("the daemon reports for its deleted runner: %v", err)
		}
		if err := svc.ConfirmDeletion(daemon); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Errorf("the daemon confirms again: %v", err)
		}
		wantDeleted(t)
		if after, _ := svc.Get(admin, r.ID); after.Status.Phase != runners.PhaseDeleted || after.Report.Version != "test" {
			t.Errorf("the tombstone changed: phase %s, version %q", after.Status.Phase, after.Report.Version)
		}
		// Its name is free at once.
		again := create("tomb")
		if again.ID == r.ID {
			t.Fatal("the new runner took the tombstone's ID")
		}
		if byName, err := svc.GetByName(admin, "name", "tomb"); err != nil || byName.ID != again.ID {
			t.Fatalf("by name: %v, %v; want the new runner", byName, err)
		}
	})
	t.Run("ErrMissing", func(t *testing.T) {
		if err := svc.Delete(admin, uuid.NewString(), true); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("delete missing: %v", err)
		}
		if _, err := svc.CreateToken(admin, uuid.NewString()); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("token for a missing runner: %v", err)
		}
		name := "x"
		if _, err := svc.Update(admin, uuid.NewString(), runners.Update{Name: &name}); apperr.CodeOf(err) != apperr.CodeNotFound {
			t.Fatalf("update a missing runner: %v", err)
		}
		wantDeleted(t)
	})
}

func TestPurgeDeleted(t *testing.T) {
	svc, _, admin := setup(t)
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	now := t0
	svc.Now = func() time.Time { return now }
	doomed, _, err := svc.Create(admin, runners.CreateInput{Name: "doomed", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	kept, _, err := svc.Create(admin, runners.CreateInput{Name: "kept", Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := svc.Delete(admin, doomed.ID, false); err != nil {
		t.Fatalf("delete: %v", err)
	}
	const retention = 24 * time.Hour
	purge := func(at time.Time) int {
		t.Helper()
		now = at
		n, err := svc.PurgeDeleted(ctx, retention)
		if err != nil {
			t.Fatalf("purge: %v", err)
		}
		return n
	}
	// Readable for the whole retention.
	if n := purge(t0.Add(retention)); n != 0 {
		t.Fatalf("purge at the end of the retention removed %d", n)
	}
	if got, err := svc.Get(admin, doomed.ID); err != nil || got.Status.Phase != runners.PhaseDeleted {
		t.Fatalf("at the end of the retention: %+v, %v", got, err)
	}
	if n := purge(t0.Add(retention + time.Microsecond)); n != 1 {
		t.Fatalf("purge after the retention removed %d, want 1", n)
	}
	if _, err := svc.Get(admin, doomed.ID); apperr.CodeOf(err) != apperr.CodeNotFound {
		t.Fatalf("get after the purge: %v", err)
	}
	if err := svc.Delete(admin, doomed.ID, true); apperr.CodeOf(err) != apperr.CodeNotFound {
		t.Fatalf("delete after the purge: %v", err)
	}
	if _, err := svc.Get(admin, kept.ID); err != nil {
		t.Fatalf("a live runner was purged: %v", err)
	}
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
	// An unreachable runner keeps its work: it may come back with it
	// still running. Its work says so meanwhile.
	if len(gone) != 0 || len(deleted) != 0 {
		t.Fatalf("after the sweep: Gone %v, Deleted %v", gone, deleted)
	}
	got, err := svc.Get(admin, r.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if msg, want := got.UnreachableMessage(), "runner host unreachable since 2026-11-24T12:00:00Z"; msg != want || !runners.IsUnreachable(msg) {
		t.Fatalf("unreachable message = %q, want %q", msg, want)
	}
	// Only after LostAfter is its work given up on, once per outage.
	svc.LostAfter = 2 * time.Minute
	now = t0.Add(svc.LostAfter - time.Second)
	if n, err := svc.SweepLost(ctx); err != nil || n != 0 || len(gone) != 0 {
		t.Fatalf("lost sweep before LostAfter: %d runners, Gone %v (err %v)", n, gone, err)
	}
	now = t0.Add(svc.LostAfter + time.Second)
	for range 2 {
		if _, err := svc.SweepSilent(ctx, timeout); err != nil {
			t.Fatalf("sweep after LostAfter: %v", err)
		}
	}
	if !slices.Equal(gone, []string{"runner unreachable for more than 2m0s"}) {
		t.Fatalf("after LostAfter: Gone %v", gone)
	}
	now = now.Add(time.Second)
	if err := svc.RecordRenewals(ctx, []runners.Renewal{{OrgID: r.OrgID, RunnerID: r.ID, At: now}}); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if p, msg := phase(); p != runners.PhaseActive || msg != "" {
		t.Fatalf("after a renewal: %s %q", p, msg)
	}
	if got, _ := svc.Get(admin, r.ID); got.UnreachableMessage() != "" {
		t.Fatalf("a runner back still says %q", got.UnreachableMessage())
	}
	// A new outage is judged afresh.
	lastSeen := now
	now = lastSeen.Add(timeout + time.Second)
	if n, err := svc.SweepSilent(ctx, timeout); err != nil || n != 1 || len(gone) != 1 {
		t.Fatalf("second outage: marked %d, Gone %v (err %v)", n, gone, err)
	}
	now = lastSeen.Add(svc.LostAfter + time.Second)
	if n, err := svc.SweepLost(ctx); err != nil || n != 1 || len(gone) != 2 {
		t.Fatalf("second outage past LostAfter: %d lost, Gone %v (err %v)", n, gone, err)
	}
	gone = gone[:1]
	now = now.Add(time.Second)
	if err := svc.RecordRenewals(ctx, []runners.Renewal{{OrgID: r.OrgID, RunnerID: r.ID, At: now}}); err != nil {
		t.Fatalf("renew: %v", err)
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
	if !slices.Equal(deleted, []string{r.ID}) || !slices.Equal(gone, []string{"runner unreachable for more than 2m0s", "runner deleted"}) {
		t.Fatalf("after the confirmation: Deleted %v, Gone %v", deleted, gone)
	}
	got, err = svc.Get(admin, r.ID)
	if err != nil || got.Status.Phase != runners.PhaseDeleted || !got.DeletedAt.Equal(now) ||
		got.Status.Message != runners.DeletedMessage(now, "confirmed by its runner after it stopped its work") {
		t.Fatalf("after confirmation: %+v, %v", got, err)
	}
	// A renewal the fleet still held neither revives nor sweeps it.
	if err := svc.RecordRenewals(ctx, []runners.Renewal{{OrgID: r.OrgID, RunnerID: r.ID, At: now.Add(time.Second)}}); err != nil {
		t.Fatalf("renew the deleted runner: %v", err)
	}
	now = now.Add(2 * timeout)
	if n, err := svc.SweepSilent(ctx, timeout); err != nil || n != 0 {
		t.Fatalf("sweep after the deletion marked %d runners (err %v)", n, err)
	}
	if p, _ := phase(); p != runners.PhaseDeleted {
		t.Fatalf("after a late renewal and a sweep: %s", p)
	}
	if !slices.Equal(gone, []string{"runner unreachable for more than 2m0s", "runner deleted"}) {
		t.Fatalf("Gone after the deletion: %v", gone)
	}
}
