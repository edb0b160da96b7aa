package storetest

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/store"
)

// newSecret returns an organization secret with every field set; the value
// is opaque bytes to the store, which never decrypts.
func newSecret(orgID, name string) *secrets.Secret {
	return &secrets.Secret{
		ID: uuid.NewString(), OrgID: orgID, Name: name,
		Scope:               secrets.Scope{Kind: secrets.ScopeOrganization, ID: orgID},
		EnvironmentVariable: true,
		Creator:             identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
		CreatedAt:           base, UpdatedAt: base,
		Value: secrets.Ciphertext{KeyID: "0011223344556677", Nonce: bytes.Repeat([]byte{1}, 12),
			Data: []byte{0, 1, 2, 0xfe, 0xff}},
	}
}

func testSecretRoundTrip(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	sec := newSecret(org.ID, "NPM_TOKEN")
	must(t, s.CreateSecret(ctx, sec), "create secret")
	if sec.Seq == 0 {
		t.Fatal("CreateSecret did not assign Seq")
	}
	got, err := s.FindSecretByID(ctx, org.ID, sec.ID)
	must(t, err, "find secret")
	if !reflect.DeepEqual(got, sec) {
		t.Fatalf("secret round trip:\n got %+v\nwant %+v", got, sec)
	}
	file := newSecret(org.ID, "ssh key")
	file.EnvironmentVariable, file.FilePath = false, "/home/me/.ssh/id_ed25519"
	file.Scope = secrets.Scope{Kind: secrets.ScopeUser, ID: uuid.NewString()}
	must(t, s.CreateSecret(ctx, file), "create file secret")
	got, err = s.FindSecretByID(ctx, org.ID, file.ID)
	must(t, err, "find file secret")
	if !reflect.DeepEqual(got, file) {
		t.Fatalf("file secret round trip:\n got %+v\nwant %+v", got, file)
	}
	registry := newSecret(org.ID, "registry")
	registry.EnvironmentVariable, registry.ContainerRegistryBasicAuthHost = false, "registry.example.com:5000"
	must(t, s.CreateSecret(ctx, registry), "create registry secret")
	got, err = s.FindSecretByID(ctx, org.ID, registry.ID)
	must(t, err, "find registry secret")
	if !reflect.DeepEqual(got, registry) {
		t.Fatalf("registry secret round trip:\n got %+v\nwant %+v", got, registry)
	}

	other := newOrg(t, s)
	_, err = s.FindSecretByID(ctx, other.ID, sec.ID)
	wantCode(t, err, apperr.CodeNotFound, "find from another organization")
	_, err = s.FindSecretByID(ctx, org.ID, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "find missing secret")
}

func testSecretNames(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	must(t, s.CreateSecret(ctx, newSecret(org.ID, "TOKEN")), "create")
	wantCode(t, s.CreateSecret(ctx, newSecret(org.ID, "TOKEN")), apperr.CodeConflict, "duplicate name in one scope")

	// The same name is free in every other scope.
	user := newSecret(org.ID, "TOKEN")
	user.Scope = secrets.Scope{Kind: secrets.ScopeUser, ID: uuid.NewString()}
	must(t, s.CreateSecret(ctx, user), "same name in a user scope")
	sa := newSecret(org.ID, "TOKEN")
	sa.Scope = secrets.Scope{Kind: secrets.ScopeServiceAccount, ID: user.Scope.ID}
	must(t, s.CreateSecret(ctx, sa), "same name and ID in a service account scope")
	other := newOrg(t, s)
	must(t, s.CreateSecret(ctx, newSecret(other.ID, "TOKEN")), "same name in another organization")
	must(t, s.CreateSecret(ctx, newSecret(org.ID, "token")), "names differ in case")
}

func testFindSecrets(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	alice, bob := uuid.NewString(), uuid.NewString()
	orgScope := secrets.Scope{Kind: secrets.ScopeOrganization, ID: org.ID}
	aliceScope := secrets.Scope{Kind: secrets.ScopeUser, ID: alice}
	bobScope := secrets.Scope{Kind: secrets.ScopeServiceAccount, ID: bob}
	var all []*secrets.Secret
	for i, sc := range []secrets.Scope{orgScope, aliceScope, orgScope, bobScope, aliceScope} {
		sec := newSecret(org.ID, fmt.Sprintf("S%d", i))
		sec.Scope = sc
		must(t, s.CreateSecret(ctx, sec), "create")
		all = append(all, sec)
		must(t, s.CreateSecret(ctx, newSecret(other.ID, fmt.Sprintf("S%d", i))), "create in other organization")
	}
	names := func(ss []*secrets.Secret) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	tests := []struct {
		name   string
		filter secrets.Filter
		want   []string
	}{
		{"All", secrets.Filter{}, []string{"S0", "S1", "S2", "S3", "S4"}},
		{"Organization", secrets.Filter{Scopes: []secrets.Scope{orgScope}}, []string{"S0", "S2"}},
		{"User", secrets.Filter{Scopes: []secrets.Scope{aliceScope}}, []string{"S1", "S4"}},
		{"OrganizationAndServiceAccount", secrets.Filter{Scopes: []secrets.Scope{orgScope, bobScope}}, []string{"S0", "S2", "S3"}},
		// A scope is kind and ID: bob's ID as a user scope holds nothing.
		{"KindMatters", secrets.Filter{Scopes: []secrets.Scope{{Kind: secrets.ScopeUser, ID: bob}}}, nil},
		{"IDs", secrets.Filter{IDs: []string{all[4].ID, all[1].ID, uuid.NewString()}}, []string{"S1", "S4"}},
		{"IDsAndScope", secrets.Filter{IDs: []string{all[0].ID, all[1].ID}, Scopes: []secrets.Scope{orgScope}}, []string{"S0"}},
		{"Page", secrets.Filter{After: all[1].Seq, Limit: 2}, []string{"S2", "S3"}},
		{"PageFiltered", secrets.Filter{After: all[1].Seq, Limit: 1, Scopes: []secrets.Scope{aliceScope}}, []string{"S4"}},
		{"None", secrets.Filter{Scopes: []secrets.Scope{{Kind: secrets.ScopeUser, ID: uuid.NewString()}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.filter.OrgID = org.ID
			got, err := s.FindSecrets(ctx, tt.filter)
			must(t, err, "find secrets")
			if !reflect.DeepEqual(names(got), tt.want) {
				t.Fatalf("got %v, want %v", names(got), tt.want)
			}
		})
	}
	// Another organization's IDs find nothing.
	got, err := s.FindSecrets(ctx, secrets.Filter{OrgID: other.ID, IDs: []string{all[0].ID}})
	must(t, err, "find by ID from another organization")
	if len(got) != 0 {
		t.Fatalf("another organization finds %v", names(got))
	}
}

func testUpdateSecret(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	sec := newSecret(org.ID, "ROTATED")
	must(t, s.CreateSecret(ctx, sec), "create")
	later := base.Add(time.Hour)
	newValue := secrets.Ciphertext{KeyID: "8899aabbccddeeff", Nonce: bytes.Repeat([]byte{2}, 12), Data: []byte("new ciphertext")}
	got, err := s.UpdateSecret(ctx, org.ID, sec.ID, func(cur *secrets.Secret) error {
		if !reflect.DeepEqual(cur, sec) {
			t.Errorf("fn got %+v, want %+v", cur, sec)
		}
		cur.Value, cur.UpdatedAt = newValue, later
		// Only the value and the time may change; this must not stick.
		cur.Name = "RENAMED"
		return nil
	})
	must(t, err, "update")
	if !reflect.DeepEqual(got.Value, newValue) || !got.UpdatedAt.Equal(later) {
		t.Fatalf("update returned %+v", got)
	}
	found, err := s.FindSecretByID(ctx, org.ID, sec.ID)
	must(t, err, "find")
	want := *sec
	want.Value, want.UpdatedAt = newValue, later
	if !reflect.DeepEqual(found, &want) {
		t.Fatalf("stored after update:\n got %+v\nwant %+v", found, &want)
	}

	// An error from fn changes nothing.
	_, err = s.UpdateSecret(ctx, org.ID, sec.ID, func(cur *secrets.Secret) error {
		cur.Value.Data = []byte("lost")
		return apperr.Invalid("value", "refused")
	})
	wantCode(t, err, apperr.CodeInvalid, "refused update")
	found, err = s.FindSecretByID(ctx, org.ID, sec.ID)
	must(t, err, "find")
	if !reflect.DeepEqual(found.Value, newValue) {
		t.Fatalf("a refused update changed the value to %+v", found.Value)
	}

	other := newOrg(t, s)
	_, err = s.UpdateSecret(ctx, other.ID, sec.ID, func(*secrets.Secret) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update from another organization")
	_, err = s.UpdateSecret(ctx, org.ID, uuid.NewString(), func(*secrets.Secret) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update missing secret")
}

func testDeleteSecret(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	sec := newSecret(org.ID, "DOOMED")
	must(t, s.CreateSecret(ctx, sec), "create")
	keep := newSecret(org.ID, "KEPT")
	must(t, s.CreateSecret(ctx, keep), "create another")

	wantCode(t, s.DeleteSecret(ctx, other.ID, sec.ID), apperr.CodeNotFound, "delete from another organization")
	must(t, s.DeleteSecret(ctx, org.ID, sec.ID), "delete")
	_, err := s.FindSecretByID(ctx, org.ID, sec.ID)
	wantCode(t, err, apperr.CodeNotFound, "find deleted secret")
	wantCode(t, s.DeleteSecret(ctx, org.ID, sec.ID), apperr.CodeNotFound, "delete twice")
	if _, err := s.FindSecretByID(ctx, org.ID, keep.ID); err != nil {
		t.Fatalf("deleting a secret removed another: %v", err)
	}
	// The name is free again.
	must(t, s.CreateSecret(ctx, newSecret(org.ID, "DOOMED")), "reuse name")
}
