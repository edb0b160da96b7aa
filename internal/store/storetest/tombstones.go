package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// This file is the conformance of deleted runners: DeleteRunner leaves a
// tombstone that only FindRunnerOrTombstone finds, until
// PurgeDeletedRunners removes it.

// markDeleted is a DeleteRunner fn that makes the runner a tombstone
// deleted at t, as the domain does.
func markDeleted(t time.Time) func(*runners.Runner) error {
	return func(r *runners.Runner) error {
		r.DeletedAt, r.UpdatedAt = t, t
		r.Spec.DesiredPhase, r.Status.Phase = runners.PhaseDeleted, runners.PhaseDeleted
		r.Status.Message = runners.DeletedMessage(t, "test")
		return nil
	}
}

func testDeleteRunner(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := connected(t, s, org.ID, "doomed", base)
	x, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateExchangeToken(ctx, x), "create exchange token")
	tok, _ := newToken(org.ID, "runner")
	tok.Principal, tok.RunnerID = identity.PrincipalRunner, r.ID
	must(t, s.CreateToken(ctx, tok), "create runner token")
	keep, _ := newToken(org.ID, "api key")
	must(t, s.CreateToken(ctx, keep), "create api key")

	// An error from fn changes nothing, tokens included.
	_, err := s.DeleteRunner(ctx, org.ID, r.ID, func(*runners.Runner) error { return apperr.FailedPrecondition("no") })
	wantCode(t, err, apperr.CodeFailedPrecondition, "refused deletion")
	if _, err := s.FindTokenByHash(ctx, tok.Hash); err != nil {
		t.Fatalf("a refused deletion removed the runner's token: %v", err)
	}
	// fn must make a tombstone: a DeleteRunner that does not is a bug, and
	// it must not delete the tokens of a runner that stays.
	_, err = s.DeleteRunner(ctx, org.ID, r.ID, func(*runners.Runner) error { return nil })
	if err == nil {
		t.Fatal("DeleteRunner accepted an fn that did not set DeletedAt")
	}
	if _, err := s.FindTokenByHash(ctx, tok.Hash); err != nil {
		t.Fatalf("a failed deletion removed the runner's token: %v", err)
	}
	// Nor may UpdateRunner make one: it would keep the tokens.
	_, err = s.UpdateRunner(ctx, org.ID, r.ID, markDeleted(base))
	if err == nil {
		t.Fatal("UpdateRunner set DeletedAt")
	}

	at := base.Add(time.Hour)
	got, err := s.DeleteRunner(ctx, org.ID, r.ID, markDeleted(at))
	must(t, err, "delete")
	if !got.DeletedAt.Equal(at) || got.Status.Phase != runners.PhaseDeleted {
		t.Fatalf("DeleteRunner returned %+v", got)
	}
	tomb, err := s.FindRunnerOrTombstone(ctx, org.ID, r.ID)
	must(t, err, "find the tombstone")
	if !reflect.DeepEqual(tomb, got) {
		t.Fatalf("tombstone differs from what DeleteRunner returned:\n got %+v\nwant %+v", tomb, got)
	}
	// To everything else the runner is gone.
	_, err = s.FindRunnerByID(ctx, org.ID, r.ID)
	wantCode(t, err, apperr.CodeNotFound, "find deleted runner by ID")
	_, err = s.FindRunnerBySeq(ctx, org.ID, r.Seq)
	wantCode(t, err, apperr.CodeNotFound, "find deleted runner by seq")
	_, err = s.FindRunnerByName(ctx, org.ID, r.Name)
	wantCode(t, err, apperr.CodeNotFound, "find deleted runner by name")
	list, err := s.FindRunners(ctx, runners.Filter{OrgID: org.ID})
	must(t, err, "list")
	if len(list) != 0 {
		t.Fatalf("the tombstone is listed: %+v", list[0])
	}
	_, err = s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error { r.Name = "revived"; return nil })
	wantCode(t, err, apperr.CodeNotFound, "update a tombstone")
	_, err = s.DeleteRunner(ctx, org.ID, r.ID, markDeleted(at.Add(time.Hour)))
	wantCode(t, err, apperr.CodeNotFound, "delete twice")
	// Renewals leave it alone and do not report it inactive.
	inactive, err := s.RenewRunners(ctx, []runners.Renewal{{OrgID: org.ID, RunnerID: r.ID, At: at.Add(time.Minute)}})
	must(t, err, "renew a tombstone")
	silent, err := s.FindSilentRunners(ctx, at.Add(time.Hour))
	must(t, err, "find silent runners")
	for _, rn := range silent {
		if rn.RunnerID == r.ID {
			t.Fatal("a tombstone is a silent runner")
		}
	}
	tomb2, err := s.FindRunnerOrTombstone(ctx, org.ID, r.ID)
	must(t, err, "find the tombstone again")
	if len(inactive) != 0 || !reflect.DeepEqual(tomb2, tomb) {
		t.Fatalf("after renewals and failed changes: inactive %+v, tombstone\n got %+v\nwant %+v", inactive, tomb2, tomb)
	}

	// Its tokens are gone; other tokens stay.
	_, err = s.FindTokenByHash(ctx, tok.Hash)
	wantCode(t, err, apperr.CodeNotFound, "deleted runner's token")
	_, err = s.RedeemExchangeToken(ctx, x.Hash, base, func(*identity.ExchangeToken) (*identity.Token, error) { return nil, nil })
	wantCode(t, err, apperr.CodeNotFound, "deleted runner's exchange token")
	if _, err := s.FindTokenByHash(ctx, keep.Hash); err != nil {
		t.Fatalf("deleting a runner removed an unrelated token: %v", err)
	}
	_, err = s.DeleteRunner(ctx, org.ID, uuid.NewString(), markDeleted(at))
	wantCode(t, err, apperr.CodeNotFound, "delete missing runner")
	_, err = s.FindRunnerOrTombstone(ctx, org.ID, uuid.NewString())
	wantCode(t, err, apperr.CodeNotFound, "find missing runner with tombstones")
}

func testRunnerTombstoneNames(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	first := newRunner(org.ID, "reused")
	must(t, s.CreateRunner(ctx, first, nil), "create")
	_, err := s.DeleteRunner(ctx, org.ID, first.ID, markDeleted(base))
	must(t, err, "delete")
	// The name is free at once, for one live runner at a time.
	second := newRunner(org.ID, "reused")
	must(t, s.CreateRunner(ctx, second, nil), "reuse the name of a tombstone")
	wantCode(t, s.CreateRunner(ctx, newRunner(org.ID, "reused"), nil), apperr.CodeConflict, "a second live runner of that name")
	other := newRunner(org.ID, "other")
	must(t, s.CreateRunner(ctx, other, nil), "create other")
	_, err = s.UpdateRunner(ctx, org.ID, other.ID, func(r *runners.Runner) error { r.Name = "reused"; return nil })
	wantCode(t, err, apperr.CodeConflict, "rename onto a live runner's name")
	// By name, the live runner is found, not the tombstone.
	byName, err := s.FindRunnerByName(ctx, org.ID, "reused")
	must(t, err, "find by name")
	if byName.ID != second.ID {
		t.Fatalf("by name found %s, want the live runner %s", byName.ID, second.ID)
	}
	// Two tombstones may share a name, and a rename may take it.
	_, err = s.DeleteRunner(ctx, org.ID, second.ID, markDeleted(base.Add(time.Second)))
	must(t, err, "delete the second")
	_, err = s.UpdateRunner(ctx, org.ID, other.ID, func(r *runners.Runner) error { r.Name = "reused"; return nil })
	must(t, err, "rename onto the name of two tombstones")
	for _, id := range []string{first.ID, second.ID} {
		tomb, err := s.FindRunnerOrTombstone(ctx, org.ID, id)
		must(t, err, "find tombstone")
		if tomb.Name != "reused" {
			t.Fatalf("tombstone %s is named %q", id, tomb.Name)
		}
	}
}

func testRunnerTombstoneExchangeTokens(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := newRunner(org.ID, "tokens")
	must(t, s.CreateRunner(ctx, r, nil), "create")
	x, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	must(t, s.CreateExchangeToken(ctx, x), "exchange token for a live runner")
	_, err := s.DeleteRunner(ctx, org.ID, r.ID, markDeleted(base))
	must(t, err, "delete")
	late, _ := identity.NewExchangeToken(org.ID, r.ID, base)
	wantCode(t, s.CreateExchangeToken(ctx, late), apperr.CodeNotFound, "exchange token for a tombstone")
	_, err = s.RedeemExchangeToken(ctx, late.Hash, base, func(*identity.ExchangeToken) (*identity.Token, error) { return nil, nil })
	wantCode(t, err, apperr.CodeNotFound, "redeem a refused exchange token")
	missing, _ := identity.NewExchangeToken(org.ID, uuid.NewString(), base)
	wantCode(t, s.CreateExchangeToken(ctx, missing), apperr.CodeNotFound, "exchange token for a missing runner")
	other := newOrg(t, s)
	live := newRunner(org.ID, "live")
	must(t, s.CreateRunner(ctx, live, nil), "create live")
	foreign, _ := identity.NewExchangeToken(other.ID, live.ID, base)
	wantCode(t, s.CreateExchangeToken(ctx, foreign), apperr.CodeNotFound, "exchange token under another organization")
}

func testPurgeDeletedRunners(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	older := connected(t, s, org.ID, "older", base)
	newer := connected(t, s, other.ID, "newer", base)
	live := connected(t, s, org.ID, "live", base)
	// Environments a tombstone still has (the control plane removes them
	// when the runner is deleted, but it may have crashed in between) go
	// with it; a live runner's stay.
	orphan := storedEnvironment(t, s, org.ID, older.ID)
	kept := storedEnvironment(t, s, org.ID, live.ID)
	_, err := s.DeleteRunner(ctx, org.ID, older.ID, markDeleted(base.Add(time.Minute)))
	must(t, err, "delete older")
	_, err = s.DeleteRunner(ctx, other.ID, newer.ID, markDeleted(base.Add(time.Hour)))
	must(t, err, "delete newer")

	// The cutoff is exclusive: a tombstone deleted at the cutoff stays.
	n, err := s.PurgeDeletedRunners(ctx, base.Add(time.Minute))
	must(t, err, "purge at the older's deletion")
	if n != 0 {
		t.Fatalf("purge with the cutoff at the deletion removed %d", n)
	}
	n, err = s.PurgeDeletedRunners(ctx, base.Add(time.Minute+time.Microsecond))
	must(t, err, "purge past the older's deletion")
	if n != 1 {
		t.Fatalf("purge removed %d tombstones, want 1", n)
	}
	_, err = s.FindRunnerOrTombstone(ctx, org.ID, older.ID)
	wantCode(t, err, apperr.CodeNotFound, "purged tombstone")
	_, err = s.FindEnvironmentByID(ctx, org.ID, orphan.ID)
	wantCode(t, err, apperr.CodeNotFound, "the purged tombstone's environment")
	if _, err := s.FindEnvironmentByID(ctx, org.ID, kept.ID); err != nil {
		t.Fatalf("a live runner's environment went with a purge: %v", err)
	}
	if _, err := s.FindRunnerOrTombstone(ctx, other.ID, newer.ID); err != nil {
		t.Fatalf("a younger tombstone of another organization was purged: %v", err)
	}
	if _, err := s.FindRunnerByID(ctx, org.ID, live.ID); err != nil {
		t.Fatalf("a live runner was purged: %v", err)
	}
	// Every organization's, however far the cutoff; never a live runner.
	n, err = s.PurgeDeletedRunners(ctx, base.Add(1000*time.Hour))
	must(t, err, "purge all")
	if n != 1 {
		t.Fatalf("second purge removed %d tombstones, want 1", n)
	}
	if _, err := s.FindRunnerByID(ctx, org.ID, live.ID); err != nil {
		t.Fatalf("a live runner was purged: %v", err)
	}
	// The purged runner's seq is not reused.
	again := newRunner(org.ID, "older")
	must(t, s.CreateRunner(ctx, again, nil), "create after purge")
	if again.Seq <= newer.Seq {
		t.Fatalf("a runner created after the purge got seq %d, not above %d", again.Seq, newer.Seq)
	}
}

// testRunnerTombstoneNotPlaced checks that no pod goes to a deleted runner
// that had room, whichever way the store places (loaded candidates, the
// SQLite index, the PostgreSQL capacity query), while a live runner takes
// the pod.
func testRunnerTombstoneNotPlaced(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	now := base.Add(time.Second)
	caller := identity.NewContext(ctx, &identity.Caller{OrgID: org.ID, Scopes: []identity.Scope{identity.ScopeAdmin},
		Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}})
	svc := &pods.Service{Store: s, Now: func() time.Time { return now }, RunnerTimeout: time.Minute}
	create := func(seq *int64) (*pods.Pod, error) {
		return svc.Create(caller, pods.CreateInput{AgentTypeID: "claude-code", InitialPrompt: "Fix the login bug",
			Labels: []string{"gpu"}, RunnerID: seq})
	}
	doomed := liveRunner(t, s, org.ID, "doomed", 4)
	// A placement before the deletion, so that the SQLite index of the
	// organization exists and must learn of the deletion.
	p, err := create(nil)
	must(t, err, "create a pod before the deletion")
	if p.RunnerID != doomed.ID {
		t.Fatalf("pod before the deletion went to %q, want the live runner %s", p.RunnerID, doomed.ID)
	}
	_, err = s.DeleteRunner(ctx, org.ID, doomed.ID, markDeleted(now))
	must(t, err, "delete")
	p, err = create(nil)
	must(t, err, "create a pod after the deletion")
	if p.RunnerID != "" || p.Status != pods.StatusPending {
		t.Fatalf("pod after the deletion: runner %q, status %s; want pending without a runner", p.RunnerID, p.Status)
	}
	// Asked for by its numeric id, the deleted runner does not exist, as
	// for a runner that never did.
	_, err = create(&doomed.Seq)
	wantCode(t, err, apperr.CodeInvalid, "a pod for the deleted runner by its numeric id")
	if !strings.Contains(err.Error(), fmt.Sprintf("no runner %d", doomed.Seq)) {
		t.Fatalf("a pod for the deleted runner by its numeric id: %v", err)
	}
	live := liveRunner(t, s, org.ID, "live", 4)
	p, err = create(nil)
	must(t, err, "create a pod with a live runner")
	if p.RunnerID != live.ID {
		t.Fatalf("pod went to %q, want the live runner %s", p.RunnerID, live.ID)
	}
}
