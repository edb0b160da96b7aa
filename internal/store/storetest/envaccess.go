package storetest

import (
	"reflect"
	"testing"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/store"
)

// testEnvironmentOfAnyOrganization: an SSH login names an environment
// without its organization; the store finds it by ID alone.
func testEnvironmentOfAnyOrganization(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	other := newOrg(t, s)
	e := storedEnvironment(t, s, org.ID, uuid.NewString())
	f := storedEnvironment(t, s, other.ID, uuid.NewString())
	for _, want := range []string{e.ID, f.ID} {
		got, err := s.FindEnvironmentOfAnyOrganization(ctx, want)
		must(t, err, "find environment of any organization")
		byOrg, err := s.FindEnvironmentByID(ctx, got.OrgID, want)
		must(t, err, "find environment in its organization")
		if !reflect.DeepEqual(got, byOrg) {
			t.Fatalf("environment of any organization:\n got %+v\nwant %+v", got, byOrg)
		}
	}
	_, err := s.FindEnvironmentOfAnyOrganization(ctx, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "find missing")
}
