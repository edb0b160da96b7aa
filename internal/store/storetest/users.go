package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/users"
)

func newUser(email string) *users.User {
	return &users.User{ID: uuid.NewString(), Email: email, Name: "N", PasswordHash: "$argon2id$x", CreatedAt: base, UpdatedAt: base}
}

// testUsers: users round-trip by id and email, emails are unique, lists
// page by Seq and filter by membership, updates are all-or-nothing.
func testUsers(t *testing.T, s store.Store) {
	a, b := newUser("a@example.com"), newUser("b@example.com")
	must(t, s.CreateUser(ctx, a), "create a")
	must(t, s.CreateUser(ctx, b), "create b")
	if a.Seq == 0 || b.Seq <= a.Seq {
		t.Fatalf("seqs %d, %d", a.Seq, b.Seq)
	}
	got, err := s.FindUserByID(ctx, a.ID)
	must(t, err, "find by id")
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	got, err = s.FindUserByEmail(ctx, "b@example.com")
	must(t, err, "find by email")
	if !reflect.DeepEqual(got, b) {
		t.Fatalf("by email:\n got %+v\nwant %+v", got, b)
	}
	_, err = s.FindUserByEmail(ctx, "missing@example.com")
	wantCode(t, err, apperr.CodeNotFound, "missing email")
	_, err = s.FindUserByID(ctx, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "missing id")
	wantCode(t, s.CreateUser(ctx, newUser("a@example.com")), apperr.CodeConflict, "taken email")

	page, err := s.FindUsers(ctx, users.UserFilter{Limit: 1})
	must(t, err, "first page")
	if len(page) != 1 || page[0].ID != a.ID {
		t.Fatalf("first page %+v", page)
	}
	page, err = s.FindUsers(ctx, users.UserFilter{After: a.Seq})
	must(t, err, "second page")
	if len(page) != 1 || page[0].ID != b.ID {
		t.Fatalf("second page %+v", page)
	}

	disabled := base.Add(time.Hour)
	upd, err := s.UpdateUser(ctx, a.ID, func(u *users.User) error {
		u.DisabledAt, u.UpdatedAt, u.PasswordHash = &disabled, disabled, "$argon2id$y"
		return nil
	})
	must(t, err, "disable")
	got, _ = s.FindUserByID(ctx, a.ID)
	if !reflect.DeepEqual(got, upd) || got.DisabledAt == nil || !got.DisabledAt.Equal(disabled) || got.PasswordHash != "$argon2id$y" {
		t.Fatalf("updated %+v", got)
	}
	_, err = s.UpdateUser(ctx, a.ID, func(u *users.User) error { u.Email = b.Email; return nil })
	wantCode(t, err, apperr.CodeConflict, "update to a taken email")
	refused := errors.New("refused")
	if _, err := s.UpdateUser(ctx, a.ID, func(u *users.User) error { u.Name = "never"; return refused }); err != refused {
		t.Fatalf("refused update: %v", err)
	}
	if got, _ := s.FindUserByID(ctx, a.ID); got.Name != "N" {
		t.Fatalf("a refused update changed the name to %q", got.Name)
	}
	_, err = s.UpdateUser(ctx, uuid.NewString(), func(*users.User) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update a missing user")
}

// testMemberships: a user belongs to several organizations with a role
// each, once per organization; roles change; memberships go with their
// organization.
func testMemberships(t *testing.T, s store.Store) {
	o1, o2 := newOrg(t, s), newOrg(t, s)
	u, v := newUser("u@example.com"), newUser("v@example.com")
	must(t, s.CreateUser(ctx, u), "create u")
	must(t, s.CreateUser(ctx, v), "create v")
	m1 := &users.Membership{OrgID: o1.ID, UserID: u.ID, Role: identity.RoleAdmin, CreatedAt: base}
	m2 := &users.Membership{OrgID: o2.ID, UserID: u.ID, Role: identity.RoleMember, CreatedAt: base.Add(time.Second)}
	m3 := &users.Membership{OrgID: o1.ID, UserID: v.ID, Role: identity.RoleAuditReader, CreatedAt: base.Add(2 * time.Second)}
	for _, m := range []*users.Membership{m1, m2, m3} {
		must(t, s.CreateMembership(ctx, m), "create membership")
	}
	wantCode(t, s.CreateMembership(ctx, &users.Membership{OrgID: o1.ID, UserID: u.ID, Role: identity.RoleMember, CreatedAt: base}),
		apperr.CodeConflict, "second membership in one organization")
	wantCode(t, s.CreateMembership(ctx, &users.Membership{OrgID: uuid.NewString(), UserID: u.ID, Role: identity.RoleMember, CreatedAt: base}),
		apperr.CodeNotFound, "membership of a missing organization")
	wantCode(t, s.CreateMembership(ctx, &users.Membership{OrgID: o1.ID, UserID: uuid.NewString(), Role: identity.RoleMember, CreatedAt: base}),
		apperr.CodeNotFound, "membership of a missing user")

	check := func(what, orgID, userID string, want ...*users.Membership) {
		t.Helper()
		got, err := s.FindMemberships(ctx, orgID, userID)
		must(t, err, what)
		if len(got) != len(want) {
			t.Fatalf("%s: %d memberships, want %d: %+v", what, len(got), len(want), got)
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s[%d] = %+v, want %+v", what, i, got[i], want[i])
			}
		}
	}
	check("of u", "", u.ID, m1, m2)
	check("of o1", o1.ID, "", m1, m3)
	check("u in o2", o2.ID, u.ID, m2)
	members, err := s.FindUsers(ctx, users.UserFilter{OrgID: o2.ID})
	must(t, err, "members of o2")
	if len(members) != 1 || members[0].ID != u.ID {
		t.Fatalf("members of o2: %+v", members)
	}

	must(t, s.SetMembershipRole(ctx, o2.ID, u.ID, identity.RoleRunnersAdmin), "set role")
	m2.Role = identity.RoleRunnersAdmin
	check("u in o2 after the role change", o2.ID, u.ID, m2)
	wantCode(t, s.SetMembershipRole(ctx, o2.ID, v.ID, identity.RoleAdmin), apperr.CodeNotFound, "role of a non-member")

	must(t, s.DeleteMembership(ctx, o1.ID, v.ID), "remove v from o1")
	wantCode(t, s.DeleteMembership(ctx, o1.ID, v.ID), apperr.CodeNotFound, "remove twice")
	check("of o1 after the removal", o1.ID, "", m1)

	must(t, s.DeleteOrganization(ctx, o2.ID, func(orgs.Contents) error { return nil }), "delete o2")
	check("of u after o2's deletion", "", u.ID, m1)
}
