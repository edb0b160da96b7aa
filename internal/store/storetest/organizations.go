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
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// testOrganizationsManage: organizations are found by id, listed by name,
// renamed (a taken name is a conflict, a refused update changes nothing).
func testOrganizationsManage(t *testing.T, s store.Store) {
	b := newOrg(t, s)
	a := &identity.Organization{ID: uuid.NewString(), Name: "a-" + uuid.NewString()[:8], CreatedAt: base.Add(time.Second), UpdatedAt: base.Add(time.Second)}
	must(t, s.CreateOrganization(ctx, a), "create organization")
	got, err := s.FindOrganizationByID(ctx, a.ID)
	must(t, err, "find by id")
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("find by id: got %+v, want %+v", got, a)
	}
	_, err = s.FindOrganizationByID(ctx, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "missing organization")

	all, err := s.FindOrganizations(ctx)
	must(t, err, "list")
	if len(all) != 2 || !reflect.DeepEqual(all[0], a) || !reflect.DeepEqual(all[1], b) {
		t.Fatalf("list = %+v, want [%+v %+v] (by name)", all, a, b)
	}

	renamed, err := s.UpdateOrganization(ctx, a.ID, func(o *identity.Organization) error {
		o.Name, o.UpdatedAt = "z-renamed", base.Add(time.Hour)
		return nil
	})
	must(t, err, "rename")
	got, err = s.FindOrganizationByID(ctx, a.ID)
	must(t, err, "find renamed")
	if !reflect.DeepEqual(got, renamed) || got.Name != "z-renamed" || !got.UpdatedAt.Equal(base.Add(time.Hour)) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("renamed = %+v (returned %+v)", got, renamed)
	}
	_, err = s.UpdateOrganization(ctx, a.ID, func(o *identity.Organization) error { o.Name = b.Name; return nil })
	wantCode(t, err, apperr.CodeConflict, "rename to a taken name")
	_, err = s.UpdateOrganization(ctx, a.ID, func(o *identity.Organization) error { o.Name = "never"; return errors.New("refused") })
	if err == nil || err.Error() != "refused" {
		t.Fatalf("refused update: %v", err)
	}
	if got, _ := s.FindOrganizationByID(ctx, a.ID); got.Name != "z-renamed" {
		t.Fatalf("a refused update changed the name to %q", got.Name)
	}
	_, err = s.UpdateOrganization(ctx, uuid.NewString(), func(*identity.Organization) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update a missing organization")
}

// testDeleteOrganization: the check sees live runners and environments
// (not tombstones); a refusal changes nothing; a delete takes the
// organization's keys, tombstones and secrets with it and leaves other
// organizations alone.
func testDeleteOrganization(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	theirs, _ := newToken(other.ID, "theirs")
	must(t, s.CreateToken(ctx, theirs), "other's token")

	tok, _ := newToken(org.ID, "key")
	must(t, s.CreateToken(ctx, tok), "create token")
	must(t, s.CreateSecret(ctx, newSecret(org.ID, "TOKEN")), "create secret")
	live := newRunner(org.ID, "live")
	must(t, s.CreateRunner(ctx, live, nil), "create runner")
	gone := newRunner(org.ID, "gone")
	must(t, s.CreateRunner(ctx, gone, nil), "create runner")
	_, err := s.DeleteRunner(ctx, org.ID, gone.ID, markDeleted(base))
	must(t, err, "tombstone")
	env := newEnvironment(org.ID, live.ID, "env")
	must(t, s.CreateEnvironment(ctx, env), "create environment")

	refuse := errors.New("refused")
	var seen orgs.Contents
	check := func(n orgs.Contents) error {
		seen = n
		if n.Runners > 0 || n.Environments > 0 {
			return refuse
		}
		return nil
	}
	if err := s.DeleteOrganization(ctx, org.ID, check); err != refuse {
		t.Fatalf("delete with contents: %v", err)
	}
	if want := (orgs.Contents{Runners: 1, Environments: 1}); seen != want {
		t.Fatalf("contents = %+v, want %+v", seen, want)
	}
	if _, err := s.FindTokenByHash(ctx, tok.Hash); err != nil {
		t.Fatalf("a refused delete removed a token: %v", err)
	}

	must(t, s.DeleteEnvironment(ctx, org.ID, env.ID, nil), "delete environment")
	_, err = s.DeleteRunner(ctx, org.ID, live.ID, func(r *runners.Runner) error { return markDeleted(base)(r) })
	must(t, err, "tombstone live runner")
	must(t, s.DeleteOrganization(ctx, org.ID, check), "delete empty organization")
	if seen != (orgs.Contents{}) {
		t.Fatalf("contents of an emptied organization = %+v", seen)
	}
	_, err = s.FindOrganizationByID(ctx, org.ID)
	wantCode(t, err, apperr.CodeNotFound, "deleted organization")
	_, err = s.FindTokenByHash(ctx, tok.Hash)
	wantCode(t, err, apperr.CodeNotFound, "deleted organization's token")
	if _, err := s.FindTokenByHash(ctx, theirs.Hash); err != nil {
		t.Fatalf("another organization's token: %v", err)
	}
	wantCode(t, s.DeleteOrganization(ctx, org.ID, check), apperr.CodeNotFound, "delete twice")
	// The name is free again.
	must(t, s.CreateOrganization(ctx, &identity.Organization{ID: uuid.NewString(), Name: org.Name, CreatedAt: base}), "reuse name")
}
