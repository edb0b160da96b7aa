package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/sshkeys"
	"github.com/runyard/runyard/internal/store"
)

// testUserSSHKeys: a user's keys round-trip, oldest first; a user holds a
// key once, two users may hold the same one and a login finds both by its
// fingerprint; a delete names the user (another user's key is not found);
// deleting the user deletes their keys.
func testUserSSHKeys(t *testing.T, s store.Store) {
	u, v := newUser("keys-u@example.com"), newUser("keys-v@example.com")
	must(t, s.CreateUser(ctx, u), "create u")
	must(t, s.CreateUser(ctx, v), "create v")
	at := time.Now().UTC().Truncate(time.Microsecond)
	key := func(userID, fp string, after time.Duration) *sshkeys.Key {
		return &sshkeys.Key{ID: uuid.NewString(), UserID: userID, Name: "laptop " + fp, Fingerprint: fp,
			PublicKey: "ssh-ed25519 AAAA" + fp, CreatedAt: at.Add(after)}
	}
	a, b := key(u.ID, "SHA256:a", 0), key(u.ID, "SHA256:b", time.Second)
	shared := key(v.ID, "SHA256:a", 2*time.Second)
	for _, k := range []*sshkeys.Key{b, a, shared} {
		must(t, s.CreateSSHKey(ctx, k), "create key")
	}
	wantCode(t, s.CreateSSHKey(ctx, key(u.ID, "SHA256:a", 3*time.Second)), apperr.CodeConflict, "the same key twice")

	got, err := s.FindSSHKeys(ctx, u.ID)
	must(t, err, "find u's keys")
	if !reflect.DeepEqual(got, []*sshkeys.Key{a, b}) {
		t.Fatalf("u's keys:\n got %+v\nwant %+v", got, []*sshkeys.Key{a, b})
	}
	byFP, err := s.FindSSHKeysByFingerprint(ctx, "SHA256:a")
	must(t, err, "find by fingerprint")
	if !reflect.DeepEqual(byFP, []*sshkeys.Key{a, shared}) {
		t.Fatalf("keys by fingerprint:\n got %+v\nwant %+v", byFP, []*sshkeys.Key{a, shared})
	}
	if none, err := s.FindSSHKeysByFingerprint(ctx, "SHA256:none"); err != nil || len(none) != 0 {
		t.Fatalf("an unknown fingerprint: %v, %v", none, err)
	}

	wantCode(t, s.DeleteSSHKey(ctx, v.ID, a.ID), apperr.CodeNotFound, "delete another user's key")
	must(t, s.DeleteSSHKey(ctx, u.ID, a.ID), "delete u's key")
	wantCode(t, s.DeleteSSHKey(ctx, u.ID, a.ID), apperr.CodeNotFound, "delete it again")
	byFP, err = s.FindSSHKeysByFingerprint(ctx, "SHA256:a")
	must(t, err, "find by fingerprint after the delete")
	if !reflect.DeepEqual(byFP, []*sshkeys.Key{shared}) {
		t.Fatalf("keys by fingerprint after the delete: %+v", byFP)
	}
}
