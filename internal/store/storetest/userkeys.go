package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/users"
)

// newUserKey returns an API key userID owns in orgID.
func newUserKey(orgID, userID string) *identity.Token {
	t, _ := newToken(orgID, "key of "+userID)
	t.Principal, t.OwnerUserID = identity.PrincipalUser, userID
	t.Creator = identity.Subject{ID: userID, Principal: identity.PrincipalUser}
	return t
}

// testUserKeys: a user's key carries its owner's state (role in the key's
// organization, disabled, installation admin) when found by hash; a
// service account's key carries none; FindTokens selects a user's keys;
// DisableUser disables and revokes every key the user owns, and nobody
// else's, in one go.
func testUserKeys(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	u, v := newUser("owner@example.com"), newUser("other@example.com")
	u.InstallationAdmin = true
	must(t, s.CreateUserWithMembership(ctx, u, &users.Membership{OrgID: org.ID, UserID: u.ID, Role: identity.RoleMember, CreatedAt: base}), "create u")
	must(t, s.CreateUserWithMembership(ctx, v, nil), "create v")
	if got, err := s.FindUserByID(ctx, u.ID); err != nil || !got.InstallationAdmin {
		t.Fatalf("installation admin flag: %+v, %v", got, err)
	}
	wantCode(t, s.CreateUserWithMembership(ctx, newUser("x@example.com"),
		&users.Membership{OrgID: uuid.NewString(), UserID: uuid.NewString(), Role: identity.RoleMember, CreatedAt: base}),
		apperr.CodeNotFound, "membership in a missing organization")
	if _, err := s.FindUserByEmail(ctx, "x@example.com"); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("user of a failed create exists: %v", err)
	}

	k1, k2, kv := newUserKey(org.ID, u.ID), newUserKey(other.ID, u.ID), newUserKey(org.ID, v.ID)
	sa, _ := newToken(org.ID, "service")
	for _, k := range []*identity.Token{k1, k2, kv, sa} {
		must(t, s.CreateToken(ctx, k), "create key")
	}
	got, err := s.FindTokenByHash(ctx, k1.Hash)
	must(t, err, "find k1")
	if got.OwnerUserID != u.ID || got.Owner == nil || *got.Owner != (identity.TokenOwner{Role: identity.RoleMember, InstallationAdmin: true}) {
		t.Fatalf("k1 owner %q %+v", got.OwnerUserID, got.Owner)
	}
	got, err = s.FindTokenByHash(ctx, k2.Hash)
	must(t, err, "find k2")
	if got.Owner == nil || got.Owner.Role != "" {
		t.Fatalf("k2 (no membership) owner %+v", got.Owner)
	}
	got, err = s.FindTokenByHash(ctx, sa.Hash)
	must(t, err, "find service key")
	if got.OwnerUserID != "" || got.Owner != nil {
		t.Fatalf("service key owner %q %+v", got.OwnerUserID, got.Owner)
	}
	owned, err := s.FindTokens(ctx, identity.TokenFilter{OwnerUserID: u.ID})
	must(t, err, "find u's keys")
	if ids := tokenIDs(owned); len(ids) != 2 || ids[0] != k1.ID || ids[1] != k2.ID {
		t.Fatalf("u's keys %v", ids)
	}
	owned, err = s.FindTokens(ctx, identity.TokenFilter{OrgID: org.ID, OwnerUserID: u.ID})
	must(t, err, "find u's keys in org")
	if ids := tokenIDs(owned); len(ids) != 1 || ids[0] != k1.ID {
		t.Fatalf("u's keys in org %v", ids)
	}

	at := base.Add(time.Hour)
	du, revoked, err := s.DisableUser(ctx, u.ID, at, nil)
	must(t, err, "disable u")
	if du.DisabledAt == nil || !du.DisabledAt.Equal(at) || len(revoked) != 2 {
		t.Fatalf("disable: %+v, revoked %v", du, tokenIDs(revoked))
	}
	got, err = s.FindTokenByHash(ctx, k1.Hash)
	must(t, err, "find k1 after disable")
	if got.RevokedAt == nil || !got.Owner.Disabled {
		t.Fatalf("k1 after disable: revoked %v, owner %+v", got.RevokedAt, got.Owner)
	}
	for _, k := range []*identity.Token{kv, sa} {
		if got := mustToken(t, s, k.OrgID, k.ID); got.RevokedAt != nil {
			t.Fatalf("key %s of someone else revoked", k.Name)
		}
	}
	_, revoked, err = s.DisableUser(ctx, u.ID, at.Add(time.Hour), nil)
	must(t, err, "disable u again")
	if len(revoked) != 0 {
		t.Fatalf("second disable revoked %v", tokenIDs(revoked))
	}
	_, _, err = s.DisableUser(ctx, uuid.NewString(), at, nil)
	wantCode(t, err, apperr.CodeNotFound, "disable a missing user")
}

// testUpdateMembership: fn sees the membership and the organization's
// enabled admins; it changes the role or removes the membership; its error
// changes nothing.
func testUpdateMembership(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	a, b, off := newUser("a@example.com"), newUser("b@example.com"), newUser("off@example.com")
	for _, x := range []struct {
		u    *users.User
		role identity.Role
	}{{a, identity.RoleAdmin}, {b, identity.RoleMember}, {off, identity.RoleAdmin}} {
		must(t, s.CreateUserWithMembership(ctx, x.u, &users.Membership{OrgID: org.ID, UserID: x.u.ID, Role: x.role, CreatedAt: base}), "create")
	}
	_, _, err := s.DisableUser(ctx, off.ID, base, nil)
	must(t, err, "disable off")
	refuse := errors.New("refused")
	_, err = s.UpdateMembership(ctx, org.ID, a.ID, func(m *users.Membership, admins int) (bool, error) {
		if m.Role != identity.RoleAdmin || admins != 1 {
			t.Errorf("fn saw role %s, %d admins; want admin, 1 (a disabled admin does not count)", m.Role, admins)
		}
		m.Role = identity.RoleMember
		return false, refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("fn's error: %v", err)
	}
	m, err := s.UpdateMembership(ctx, org.ID, b.ID, func(m *users.Membership, _ int) (bool, error) {
		m.Role = identity.RoleAdmin
		return false, nil
	})
	must(t, err, "promote b")
	if m.Role != identity.RoleAdmin {
		t.Fatalf("promote returned %+v", m)
	}
	ms, err := s.FindMemberships(ctx, org.ID, a.ID)
	must(t, err, "find a")
	if len(ms) != 1 || ms[0].Role != identity.RoleAdmin {
		t.Fatalf("a after a refused change: %+v", ms)
	}
	_, err = s.UpdateMembership(ctx, org.ID, a.ID, func(_ *users.Membership, admins int) (bool, error) {
		if admins != 2 {
			t.Errorf("admins %d, want 2", admins)
		}
		return true, nil
	})
	must(t, err, "remove a")
	if ms, _ := s.FindMemberships(ctx, org.ID, a.ID); len(ms) != 0 {
		t.Fatalf("a still a member: %+v", ms)
	}
	_, err = s.UpdateMembership(ctx, org.ID, a.ID, func(*users.Membership, int) (bool, error) { return false, nil })
	wantCode(t, err, apperr.CodeNotFound, "update a missing membership")
}

// testInvites: an invite round-trips by hash; RedeemInvite creates the
// membership (and the user, when asked), marks the invite used, and a
// second redemption or fn's refusal changes nothing.
func testInvites(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	inv := &users.Invite{ID: uuid.NewString(), Hash: identity.HashSecret("ryd_inv_x" + uuid.NewString()), OrgID: org.ID,
		Role: identity.RoleRunnersAdmin, CreatorID: "admin", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	must(t, s.CreateInvite(ctx, inv), "create invite")
	wantCode(t, s.CreateInvite(ctx, &users.Invite{ID: uuid.NewString(), Hash: "h2", OrgID: uuid.NewString(), Role: identity.RoleMember,
		CreatedAt: base, ExpiresAt: base}), apperr.CodeNotFound, "invite to a missing organization")
	got, err := s.FindInviteByHash(ctx, inv.Hash)
	must(t, err, "find invite")
	if *got != *inv {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, inv)
	}
	_, err = s.FindInviteByHash(ctx, "missing")
	wantCode(t, err, apperr.CodeNotFound, "missing invite")

	u := newUser("new@example.com")
	refuse := errors.New("refused")
	_, err = s.RedeemInvite(ctx, inv.Hash, base, func(*users.Invite) (*users.User, *users.Membership, error) { return nil, nil, refuse })
	if !errors.Is(err, refuse) {
		t.Fatalf("refusal: %v", err)
	}
	at := base.Add(time.Minute)
	red, err := s.RedeemInvite(ctx, inv.Hash, at, func(i *users.Invite) (*users.User, *users.Membership, error) {
		return u, &users.Membership{OrgID: i.OrgID, UserID: u.ID, Role: i.Role, CreatedAt: at}, nil
	})
	must(t, err, "redeem")
	if red.UsedAt == nil || !red.UsedAt.Equal(at) || red.UsedBy != u.ID {
		t.Fatalf("redeemed %+v", red)
	}
	if ms, _ := s.FindMemberships(ctx, org.ID, u.ID); len(ms) != 1 || ms[0].Role != identity.RoleRunnersAdmin {
		t.Fatalf("membership after redeem: %+v", ms)
	}
	if _, err := s.FindUserByEmail(ctx, u.Email); err != nil {
		t.Fatalf("user created with the redemption: %v", err)
	}
	v := newUser("second@example.com")
	_, err = s.RedeemInvite(ctx, inv.Hash, at, func(i *users.Invite) (*users.User, *users.Membership, error) {
		return v, &users.Membership{OrgID: i.OrgID, UserID: v.ID, Role: i.Role, CreatedAt: at}, nil
	})
	if err == nil {
		t.Fatal("second redemption succeeded")
	}
	if _, err := s.FindUserByEmail(ctx, v.Email); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("second redemption created its user: %v", err)
	}
}
