package sessions_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/users"
)

const pw = "correct horse battery staple"

// countingStore counts the session writes that authenticating makes.
type countingStore struct {
	store.Store
	touches atomic.Int64
	reads   atomic.Int64
}

func (c *countingStore) TouchSession(ctx context.Context, id string, seen, idle time.Time) error {
	c.touches.Add(1)
	return c.Store.TouchSession(ctx, id, seen, idle)
}

func (c *countingStore) FindSessionByHash(ctx context.Context, hash string) (*sessions.Session, error) {
	c.reads.Add(1)
	return c.Store.FindSessionByHash(ctx, hash)
}

type fixture struct {
	svc   *sessions.Service
	st    *countingStore
	now   time.Time
	user  *users.User
	orgID string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{st: &countingStore{Store: db}, now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	ids := identity.NewService(db)
	ids.Now = func() time.Time { return f.now }
	f.svc = sessions.NewService(f.st, db, ids)
	f.svc.Now = func() time.Time { return f.now }
	org := &identity.Organization{ID: uuid.NewString(), Name: "o", CreatedAt: f.now, UpdatedAt: f.now}
	if err := db.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	f.orgID = org.ID
	h, _ := users.HashPassword(pw)
	f.user = &users.User{ID: uuid.NewString(), Email: "u@example.com", PasswordHash: h, CreatedAt: f.now, UpdatedAt: f.now}
	if err := db.CreateUser(ctx, f.user); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateMembership(ctx, &users.Membership{OrgID: org.ID, UserID: f.user.ID, Role: identity.RoleRunnersAdmin, CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestService_AuthenticateWritesAtMostOnceAMinute(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	iss, err := f.svc.SignInPassword(ctx, "u@example.com", pw, sessions.Meta{ClientIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 600 {
		f.now = f.now.Add(50 * time.Millisecond) // 30 s of requests
		c, err := f.svc.Authenticate(ctx, iss.Secret)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if c.UserID != f.user.ID || c.Subject.Principal != identity.PrincipalUser || c.Role != identity.RoleRunnersAdmin ||
			!c.Has(identity.ScopeRunnersWrite) || c.Has(identity.ScopeAdmin) || c.SessionID != iss.Session.ID {
			t.Fatalf("caller %+v", c)
		}
	}
	if n := f.st.touches.Load(); n != 0 {
		t.Errorf("%d last-seen writes in 30 s of requests, want 0", n)
	}
	if n := f.st.reads.Load(); n > 7 {
		t.Errorf("%d session reads in 30 s of requests, want at most one per %s", n, 5*time.Second)
	}
	f.now = f.now.Add(31 * time.Second)
	if _, err := f.svc.Authenticate(ctx, iss.Secret); err != nil {
		t.Fatal(err)
	}
	if n := f.st.touches.Load(); n != 1 {
		t.Errorf("%d last-seen writes after a minute, want 1", n)
	}
	got, _ := f.st.FindSessionByID(ctx, iss.Session.ID)
	if !got.LastSeenAt.Equal(f.now.Truncate(time.Microsecond)) || !got.IdleExpiresAt.Equal(got.LastSeenAt.Add(sessions.DefaultIdleTimeout)) {
		t.Errorf("after the touch: last seen %v, idle expiry %v", got.LastSeenAt, got.IdleExpiresAt)
	}
}

func TestService_LockoutPassesAndResets(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits = sessions.Limits{MaxFailures: 2, LockoutDuration: 10 * time.Minute, PerIPBurst: 100, PerIPInterval: time.Second}
	ctx := context.Background()
	try := func(p string) error {
		_, err := f.svc.SignInPassword(ctx, "u@example.com", p, sessions.Meta{ClientIP: "192.0.2.1"})
		return err
	}
	for range 2 {
		if err := try("wrong wrong wrong"); !apperr.Is(err, apperr.CodeUnauthenticated) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	err := try(pw)
	if d, ok := sessions.RetryAfter(err); !apperr.Is(err, apperr.CodeResourceExhausted) || !ok || d != 10*time.Minute {
		t.Fatalf("locked: %v (retry after %v)", err, d)
	}
	f.now = f.now.Add(10*time.Minute + time.Second)
	// The lock has passed: one failure does not lock again.
	if err := try("wrong wrong wrong"); !apperr.Is(err, apperr.CodeUnauthenticated) {
		t.Fatalf("after the lock: %v", err)
	}
	if err := try(pw); err != nil {
		t.Fatalf("right password after the lock: %v", err)
	}
	// Success forgets the failures.
	if l, _ := f.st.FindSignInLockout(ctx, f.user.ID); l.Failures != 0 {
		t.Errorf("failures after a success: %d", l.Failures)
	}
}

func TestService_RateLimitRefills(t *testing.T) {
	f := newFixture(t)
	f.svc.Limits.PerIPBurst, f.svc.Limits.PerIPInterval = 2, 10*time.Second
	ctx := context.Background()
	try := func(ip string) error {
		_, err := f.svc.SignInPassword(ctx, "nobody@example.com", "whatever", sessions.Meta{ClientIP: ip})
		return err
	}
	for range 2 {
		if err := try("192.0.2.1"); !apperr.Is(err, apperr.CodeUnauthenticated) {
			t.Fatal(err)
		}
	}
	if err := try("192.0.2.1"); !apperr.Is(err, apperr.CodeResourceExhausted) || !strings.Contains(err.Error(), "try again in 10s") {
		t.Fatalf("third attempt: %v", err)
	}
	if err := try("192.0.2.2"); !apperr.Is(err, apperr.CodeUnauthenticated) {
		t.Fatalf("another address: %v", err)
	}
	f.now = f.now.Add(10 * time.Second)
	if err := try("192.0.2.1"); !apperr.Is(err, apperr.CodeUnauthenticated) {
		t.Fatalf("after the refill: %v", err)
	}
}

func TestService_CSRF(t *testing.T) {
	a, b := identity.NewSecret(sessions.SecretPrefix), identity.NewSecret(sessions.SecretPrefix)
	if sessions.CSRFToken(a) == sessions.CSRFToken(b) || strings.Contains(sessions.CSRFToken(a), a) {
		t.Fatal("CSRF tokens are not per session")
	}
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"Right", sessions.CSRFToken(a), true},
		{"Missing", "", false},
		{"OtherSession", sessions.CSRFToken(b), false},
		{"Truncated", sessions.CSRFToken(a)[:10], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sessions.CheckCSRF(a, tc.token)
			if (err == nil) != tc.ok || (err != nil && !apperr.Is(err, apperr.CodePermissionDenied)) {
				t.Fatalf("CheckCSRF = %v", err)
			}
		})
	}
}

func TestService_SignInUser(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	iss, err := f.svc.SignInUser(ctx, f.user.ID, "", sessions.Meta{})
	if err != nil || iss.Caller.OrgID != f.orgID || iss.Caller.UserID != f.user.ID {
		t.Fatalf("SignInUser: %+v, %v", iss, err)
	}
	if _, err := f.svc.SignInUser(ctx, f.user.ID, uuid.NewString(), sessions.Meta{}); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("into another organization: %v", err)
	}
	// A new sign-in with the old cookie rotates it out.
	next, err := f.svc.SignInUser(ctx, f.user.ID, f.orgID, sessions.Meta{PreviousSecret: iss.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Authenticate(ctx, iss.Secret); !apperr.Is(err, apperr.CodeUnauthenticated) {
		t.Fatalf("the previous cookie: %v", err)
	}
	if _, err := f.svc.Authenticate(ctx, next.Secret); err != nil {
		t.Fatal(err)
	}
}

func TestValidateTimeouts(t *testing.T) {
	for _, tc := range []struct {
		idle, max time.Duration
		field     string
	}{
		{12 * time.Hour, 7 * 24 * time.Hour, ""},
		{0, time.Hour, "--session-idle-timeout"},
		{time.Hour, -time.Hour, "--session-max-age"},
		{2 * time.Hour, time.Hour, "--session-idle-timeout"},
	} {
		err := sessions.ValidateTimeouts(tc.idle, tc.max)
		if tc.field == "" && err != nil || tc.field != "" && (apperr.As(err).Field != tc.field) {
			t.Errorf("ValidateTimeouts(%s, %s) = %v, want field %q", tc.idle, tc.max, err, tc.field)
		}
	}
}

// BenchmarkAuthenticate is the cost of a request's session check once the
// session is cached (the common case: a console's burst of requests).
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "runyard.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	org := &identity.Organization{ID: uuid.NewString(), Name: "o", CreatedAt: now, UpdatedAt: now}
	u := &users.User{ID: uuid.NewString(), Email: "b@example.com", CreatedAt: now, UpdatedAt: now}
	if err := db.CreateOrganization(ctx, org); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateMembership(ctx, &users.Membership{OrgID: org.ID, UserID: u.ID, Role: identity.RoleMember, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	svc := sessions.NewService(db, db, identity.NewService(db))
	iss, err := svc.SignInUser(ctx, u.ID, "", sessions.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := svc.Authenticate(ctx, iss.Secret); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
