package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/store"
)

func newBrowserSession(orgID, userID, tokenID string) *sessions.Session {
	return &sessions.Session{
		ID: uuid.NewString(), Hash: identity.HashSecret(uuid.NewString()), OrgID: orgID, UserID: userID, TokenID: tokenID,
		ClientIP: "192.0.2.7", UserAgent: "test-agent", CreatedAt: base, LastSeenAt: base,
		IdleExpiresAt: base.Add(time.Hour), ExpiresAt: base.Add(24 * time.Hour),
	}
}

// testBrowserSessions: sessions round-trip by hash and id, touch moves
// last-seen forward only, revocation keeps its first time, rotation is
// all-or-nothing, a user's sessions revoke together, expired ones are
// deleted, and each write commits the call's audit entry with it.
func testBrowserSessions(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	u := newUser("s@example.com")
	must(t, s.CreateUser(ctx, u), "create user")
	tok, _ := newToken(org.ID, "console")
	must(t, s.CreateToken(ctx, tok), "create token")

	a := newBrowserSession(org.ID, u.ID, "")
	actx, d := audit.Begin(ctx, audit.SurfaceAuth, "POST /auth/password", sessions.ObjectTypeSession, "192.0.2.7", "ua")
	must(t, s.CreateSession(actx, a), "create user session")
	if _, ok := d.Pending(actx, base); ok {
		t.Error("CreateSession did not write the call's audit entry with the session")
	}
	k := newBrowserSession(org.ID, "", tok.ID)
	k.SealedKey = "c2VhbGVk"
	must(t, s.CreateSession(ctx, k), "create key session")
	wantCode(t, s.CreateSession(ctx, &sessions.Session{ID: uuid.NewString(), Hash: a.Hash, OrgID: org.ID, UserID: u.ID,
		CreatedAt: base, LastSeenAt: base, IdleExpiresAt: base, ExpiresAt: base}), apperr.CodeConflict, "duplicate hash")

	for _, want := range []*sessions.Session{a, k} {
		got, err := s.FindSessionByHash(ctx, want.Hash)
		must(t, err, "find by hash")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip by hash:\n got %+v\nwant %+v", got, want)
		}
		got, err = s.FindSessionByID(ctx, want.ID)
		must(t, err, "find by id")
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip by id:\n got %+v\nwant %+v", got, want)
		}
	}
	_, err := s.FindSessionByHash(ctx, identity.HashSecret("nope"))
	wantCode(t, err, apperr.CodeNotFound, "unknown hash")
	_, err = s.FindSessionByID(ctx, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "unknown id")

	// Touch moves forward only: a slower replica's older touch is ignored.
	seen, idle := base.Add(2*time.Minute), base.Add(2*time.Hour)
	must(t, s.TouchSession(ctx, a.ID, seen, idle), "touch")
	must(t, s.TouchSession(ctx, a.ID, base.Add(time.Minute), base.Add(time.Hour)), "older touch")
	got, err := s.FindSessionByID(ctx, a.ID)
	must(t, err, "find touched")
	if !got.LastSeenAt.Equal(seen) || !got.IdleExpiresAt.Equal(idle) {
		t.Fatalf("after touch: last seen %v idle %v, want %v %v", got.LastSeenAt, got.IdleExpiresAt, seen, idle)
	}
	must(t, s.TouchSession(ctx, uuid.NewString(), seen, idle), "touch of an unknown session")

	// Revoke keeps the first time; unknown is not found.
	r1 := base.Add(3 * time.Minute)
	must(t, s.RevokeSession(ctx, k.ID, r1), "revoke")
	must(t, s.RevokeSession(ctx, k.ID, r1.Add(time.Minute)), "revoke again")
	got, err = s.FindSessionByID(ctx, k.ID)
	must(t, err, "find revoked")
	if got.RevokedAt == nil || !got.RevokedAt.Equal(r1) {
		t.Fatalf("revoked at %v, want %v", got.RevokedAt, r1)
	}
	wantCode(t, s.RevokeSession(ctx, uuid.NewString(), r1), apperr.CodeNotFound, "revoke unknown")
	must(t, s.TouchSession(ctx, k.ID, base.Add(time.Hour), base.Add(2*time.Hour)), "touch revoked")
	if got, _ := s.FindSessionByID(ctx, k.ID); !got.LastSeenAt.Equal(base) {
		t.Errorf("a revoked session was touched: last seen %v", got.LastSeenAt)
	}

	// Rotation: the old session ends and the new one exists, or neither.
	next := newBrowserSession(org.ID, u.ID, "")
	must(t, s.RotateSession(ctx, a.ID, r1, next), "rotate")
	if got, _ := s.FindSessionByID(ctx, a.ID); got.RevokedAt == nil {
		t.Error("rotated session still live")
	}
	if _, err := s.FindSessionByHash(ctx, next.Hash); err != nil {
		t.Errorf("rotated-to session: %v", err)
	}
	lost := newBrowserSession(org.ID, u.ID, "")
	wantCode(t, s.RotateSession(ctx, a.ID, r1, lost), apperr.CodeUnauthenticated, "rotate a revoked session")
	wantCode(t, s.RotateSession(ctx, uuid.NewString(), r1, lost), apperr.CodeNotFound, "rotate an unknown session")
	if _, err := s.FindSessionByID(ctx, lost.ID); !apperr.Is(err, apperr.CodeNotFound) {
		t.Errorf("a failed rotation created its session: %v", err)
	}

	// Concurrent rotations of one session: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.RotateSession(ctx, next.ID, r1, newBrowserSession(org.ID, u.ID, ""))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if !apperr.Is(err, apperr.CodeUnauthenticated) {
			t.Errorf("concurrent rotation: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent rotations won, want 1", won)
	}

	// A user's live sessions revoke together; another user's stay.
	v := newUser("t@example.com")
	must(t, s.CreateUser(ctx, v), "create other user")
	b1, b2, other := newBrowserSession(org.ID, u.ID, ""), newBrowserSession(org.ID, u.ID, ""), newBrowserSession(org.ID, v.ID, "")
	for _, x := range []*sessions.Session{b1, b2, other} {
		must(t, s.CreateSession(ctx, x), "create")
	}
	n, err := s.RevokeUserSessions(ctx, u.ID, r1)
	must(t, err, "revoke user")
	if n != 3 { // b1, b2 and the winner of the rotations
		t.Errorf("revoked %d sessions, want 3", n)
	}
	if got, _ := s.FindSessionByID(ctx, other.ID); got.RevokedAt != nil {
		t.Error("another user's session was revoked")
	}
	if got, _ := s.FindSessionByID(ctx, b2.ID); got.RevokedAt == nil {
		t.Error("the user's session is still live")
	}

	// Expired sessions are deleted; live ones stay.
	old := newBrowserSession(org.ID, v.ID, "")
	old.ExpiresAt = base.Add(-time.Hour)
	must(t, s.CreateSession(ctx, old), "create expired")
	n, err = s.DeleteExpiredSessions(ctx, base)
	must(t, err, "delete expired")
	if n != 1 {
		t.Errorf("deleted %d, want 1", n)
	}
	if _, err := s.FindSessionByID(ctx, other.ID); err != nil {
		t.Errorf("live session deleted: %v", err)
	}
}

// testSignInLockout: failures count up, the max locks the account, a
// passed lock starts the count again, clearing forgets it, and concurrent
// failures all count.
func testSignInLockout(t *testing.T, s store.Store) {
	u := newUser("lock@example.com")
	must(t, s.CreateUser(ctx, u), "create user")
	l, err := s.FindSignInLockout(ctx, u.ID)
	must(t, err, "find none")
	if l.Failures != 0 || l.LockedUntil != nil {
		t.Fatalf("fresh lockout %+v", l)
	}
	const max, lockFor = 3, 10 * time.Minute
	for i := 1; i <= max; i++ {
		l, err = s.RecordSignInFailure(ctx, u.ID, base.Add(time.Duration(i)*time.Second), max, lockFor)
		must(t, err, "record failure")
		if l.Failures != i {
			t.Fatalf("failure %d counted %d", i, l.Failures)
		}
		if (l.LockedUntil != nil) != (i == max) {
			t.Fatalf("after %d failures locked until %v", i, l.LockedUntil)
		}
	}
	wantUntil := base.Add(max * time.Second).Add(lockFor)
	if !l.LockedUntil.Equal(wantUntil) {
		t.Fatalf("locked until %v, want %v", l.LockedUntil, wantUntil)
	}
	got, err := s.FindSignInLockout(ctx, u.ID)
	must(t, err, "find locked")
	if !reflect.DeepEqual(got, l) {
		t.Fatalf("find %+v, want %+v", got, l)
	}
	// A failure during the lock keeps it; one after it starts over.
	l, err = s.RecordSignInFailure(ctx, u.ID, wantUntil.Add(-time.Second), max, lockFor)
	must(t, err, "failure during lock")
	if l.LockedUntil == nil || !l.LockedUntil.Equal(wantUntil) {
		t.Fatalf("lock moved to %v", l.LockedUntil)
	}
	l, err = s.RecordSignInFailure(ctx, u.ID, wantUntil.Add(time.Second), max, lockFor)
	must(t, err, "failure after lock")
	if l.Failures != 1 || l.LockedUntil != nil {
		t.Fatalf("after the lock passed: %+v", l)
	}
	must(t, s.ClearSignInFailures(ctx, u.ID), "clear")
	if l, _ := s.FindSignInLockout(ctx, u.ID); l.Failures != 0 || l.LockedUntil != nil {
		t.Fatalf("after clear: %+v", l)
	}
	must(t, s.ClearSignInFailures(ctx, u.ID), "clear again")

	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.RecordSignInFailure(ctx, u.ID, base, 100, lockFor); err != nil {
				t.Errorf("concurrent failure: %v", err)
			}
		}()
	}
	wg.Wait()
	if l, _ := s.FindSignInLockout(ctx, u.ID); l.Failures != 8 {
		t.Errorf("8 concurrent failures counted %d", l.Failures)
	}
}
