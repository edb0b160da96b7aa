package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/users"
)

// testDisableUserCheck: DisableUser hands check the enabled-admin count of
// every organization the user is an admin of (the user counted), and a
// refusal changes nothing: the user stays enabled, their keys active.
func testDisableUserCheck(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	a, b, m := newUser("a@example.com"), newUser("b@example.com"), newUser("m@example.com")
	must(t, s.CreateUserWithMembership(ctx, a, &users.Membership{OrgID: org.ID, UserID: a.ID, Role: identity.RoleAdmin, CreatedAt: base}), "create a")
	must(t, s.CreateMembership(ctx, &users.Membership{OrgID: other.ID, UserID: a.ID, Role: identity.RoleAdmin, CreatedAt: base}), "a in other")
	must(t, s.CreateUserWithMembership(ctx, b, &users.Membership{OrgID: org.ID, UserID: b.ID, Role: identity.RoleAdmin, CreatedAt: base}), "create b")
	must(t, s.CreateUserWithMembership(ctx, m, &users.Membership{OrgID: other.ID, UserID: m.ID, Role: identity.RoleMember, CreatedAt: base}), "create m")
	key := newUserKey(org.ID, a.ID)
	must(t, s.CreateToken(ctx, key), "a's key")

	refuse := errors.New("refused")
	var seen map[string]int
	_, _, err := s.DisableUser(ctx, a.ID, base, func(u *users.User, admins map[string]int) error {
		seen = admins
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("check's error: %v", err)
	}
	if len(seen) != 2 || seen[org.ID] != 2 || seen[other.ID] != 1 {
		t.Fatalf("check saw admins %v, want %s:2 %s:1", seen, org.ID, other.ID)
	}
	if u, _ := s.FindUserByID(ctx, a.ID); u.DisabledAt != nil {
		t.Fatal("a refused disable disabled the user")
	}
	if k, _ := s.FindTokenByHash(ctx, key.Hash); k.RevokedAt != nil {
		t.Fatal("a refused disable revoked the user's key")
	}
	// A member of no organization as admin: check sees none.
	_, _, err = s.DisableUser(ctx, m.ID, base, func(_ *users.User, admins map[string]int) error {
		if len(admins) != 0 {
			t.Errorf("member's check saw admins %v", admins)
		}
		return nil
	})
	must(t, err, "disable m")
	_, _, err = s.DisableUser(ctx, b.ID, base, func(*users.User, map[string]int) error { return nil })
	must(t, err, "disable b")
	// b no longer counts.
	_, _, err = s.DisableUser(ctx, a.ID, base, func(_ *users.User, admins map[string]int) error {
		if admins[org.ID] != 1 {
			t.Errorf("after b's disable %s has %d admins, want 1", org.ID, admins[org.ID])
		}
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("check's error: %v", err)
	}
	// An already disabled user is not checked again.
	_, _, err = s.DisableUser(ctx, b.ID, base, func(*users.User, map[string]int) error { return refuse })
	must(t, err, "disable b again")
}

// testLastAdminConcurrent: two admins disabling, or one disabling and one
// demoting, an organization's last two admins at the same time: exactly
// one of the two passes, and the organization keeps one enabled admin.
// (users.Service runs the check inside the store's locked transaction;
// checked before it, both could pass.)
func testLastAdminConcurrent(t *testing.T, s store.Store) {
	svc := users.NewService(s)
	for round := range 8 {
		org := newOrg(t, s)
		a, b := newUser(uuid.NewString()[:8]+"@example.com"), newUser(uuid.NewString()[:8]+"@example.com")
		for _, u := range []*users.User{a, b} {
			must(t, s.CreateUserWithMembership(ctx, u, &users.Membership{OrgID: org.ID, UserID: u.ID, Role: identity.RoleAdmin, CreatedAt: base}), "create admin")
		}
		admin := identity.NewContext(context.Background(), &identity.Caller{OrgID: org.ID, InstallationAdmin: true,
			Scopes: []identity.Scope{identity.ScopeAdmin}, Subject: identity.Subject{ID: "install", Principal: identity.PrincipalServiceAccount}})
		second := func() error { _, err := svc.SetDisabled(admin, b.ID, true); return err }
		what := "disable and disable"
		if round%2 == 1 {
			what = "disable and demote"
			second = func() error { _, err := svc.SetRole(admin, org.ID, b.ID, string(identity.RoleMember)); return err }
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, fn := range []func() error{func() error { _, err := svc.SetDisabled(admin, a.ID, true); return err }, second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = fn()
			}()
		}
		close(start)
		wg.Wait()
		passed := 0
		for _, err := range errs {
			switch {
			case err == nil:
				passed++
			case !apperr.Is(err, apperr.CodeFailedPrecondition):
				t.Fatalf("round %d (%s): unexpected error %v", round, what, err)
			}
		}
		if passed != 1 {
			t.Fatalf("round %d (%s): %d of 2 passed (%v), want exactly 1", round, what, passed, errs)
		}
		n := 0
		ms, err := s.FindMemberships(ctx, org.ID, "")
		must(t, err, "members")
		for _, m := range ms {
			u, err := s.FindUserByID(ctx, m.UserID)
			must(t, err, "user")
			if m.Role == identity.RoleAdmin && u.DisabledAt == nil {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d (%s): %d enabled admins left, want 1", round, what, n)
		}
	}
}

// testOtherUserSessions: RevokeOtherUserSessions ends a user's live
// sessions but the one kept, and nobody else's.
func testOtherUserSessions(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	u, v := newUser("u@example.com"), newUser("v@example.com")
	must(t, s.CreateUser(ctx, u), "create u")
	must(t, s.CreateUser(ctx, v), "create v")
	keep, other1, other2, vs := newBrowserSession(org.ID, u.ID, ""), newBrowserSession(org.ID, u.ID, ""),
		newBrowserSession(org.ID, u.ID, ""), newBrowserSession(org.ID, v.ID, "")
	must(t, s.CreateSession(ctx, keep), "keep")
	must(t, s.CreateSession(ctx, other1), "other1")
	must(t, s.CreateSession(ctx, other2), "other2")
	must(t, s.CreateSession(ctx, vs), "v's")
	must(t, s.RevokeSession(ctx, other2.ID, base), "revoke other2")
	at := base.Add(time.Minute)
	n, err := s.RevokeOtherUserSessions(ctx, u.ID, keep.ID, at)
	must(t, err, "revoke others")
	if n != 1 {
		t.Fatalf("revoked %d, want 1 (other2 was revoked already)", n)
	}
	for _, c := range []struct {
		id      string
		revoked *time.Time
	}{{keep.ID, nil}, {other1.ID, &at}, {other2.ID, &base}, {vs.ID, nil}} {
		got, err := s.FindSessionByID(ctx, c.id)
		must(t, err, "find session")
		if (got.RevokedAt == nil) != (c.revoked == nil) || (got.RevokedAt != nil && !got.RevokedAt.Equal(*c.revoked)) {
			t.Fatalf("session %s revoked at %v, want %v", c.id, got.RevokedAt, c.revoked)
		}
	}
}

// testPendingInvites: FindPendingInvites lists an organization's unused,
// unexpired invites, oldest first; DeleteInvite removes an unused one,
// refuses a used one and does not find another organization's.
func testPendingInvites(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	mk := func(orgID string, created time.Time, ttl time.Duration) *users.Invite {
		inv := &users.Invite{ID: uuid.NewString(), Hash: identity.HashSecret(uuid.NewString()), OrgID: orgID, Role: identity.RoleMember,
			CreatorID: "admin", CreatedAt: created, ExpiresAt: created.Add(ttl)}
		must(t, s.CreateInvite(ctx, inv), "create invite")
		return inv
	}
	second := mk(org.ID, base.Add(time.Second), time.Hour)
	first := mk(org.ID, base, time.Hour)
	mk(org.ID, base, time.Minute) // expired at the time asked
	mk(other.ID, base, time.Hour)
	used := mk(org.ID, base, time.Hour)
	u := newUser("joined@example.com")
	_, err := s.RedeemInvite(ctx, used.Hash, base, func(inv *users.Invite) (*users.User, *users.Membership, error) {
		return u, &users.Membership{OrgID: inv.OrgID, UserID: u.ID, Role: inv.Role, CreatedAt: base}, nil
	})
	must(t, err, "redeem")

	got, err := s.FindPendingInvites(ctx, org.ID, base.Add(2*time.Minute))
	must(t, err, "pending")
	if len(got) != 2 || got[0].ID != first.ID || got[1].ID != second.ID || *got[0] != *first {
		t.Fatalf("pending invites: %+v, want %s then %s", got, first.ID, second.ID)
	}
	_, err = s.DeleteInvite(ctx, other.ID, first.ID)
	wantCode(t, err, apperr.CodeNotFound, "delete another organization's invite")
	_, err = s.DeleteInvite(ctx, org.ID, used.ID)
	wantCode(t, err, apperr.CodeFailedPrecondition, "delete a used invite")
	del, err := s.DeleteInvite(ctx, org.ID, first.ID)
	must(t, err, "delete")
	if del.ID != first.ID {
		t.Fatalf("deleted %+v", del)
	}
	_, err = s.FindInviteByHash(ctx, first.Hash)
	wantCode(t, err, apperr.CodeNotFound, "a deleted invite")
	_, err = s.DeleteInvite(ctx, org.ID, first.ID)
	wantCode(t, err, apperr.CodeNotFound, "delete twice")
	if got, _ := s.FindPendingInvites(ctx, org.ID, base.Add(2*time.Minute)); len(got) != 1 || got[0].ID != second.ID {
		t.Fatalf("after delete: %+v", got)
	}
}
