package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// testLostRunners: an INACTIVE runner last seen before the cutoff is found
// until it is marked lost, once per outage (a runner seen again after the
// mark is judged afresh); active, recent, never-connected and deleted
// runners are never found, and a runner that came back is not marked.
func testLostRunners(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	inactive := func(name string, at time.Time) *runners.Runner {
		t.Helper()
		r := connected(t, s, org.ID, name, at)
		_, err := s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
			r.Status.Phase = runners.PhaseInactive
			return nil
		})
		must(t, err, "make "+name+" inactive")
		return r
	}
	old := inactive("old", base)
	inactive("recent", base.Add(24*time.Hour))
	connected(t, s, org.ID, "active", base)
	must(t, s.CreateRunner(ctx, newRunner(org.ID, "never"), nil), "create never-connected")
	gone := inactive("gone", base)
	_, err := s.DeleteRunner(ctx, org.ID, gone.ID, func(r *runners.Runner) error {
		r.DeletedAt = base.Add(time.Minute)
		r.Status.Phase = runners.PhaseDeleted
		return nil
	})
	must(t, err, "delete gone")

	cutoff := base.Add(10 * time.Minute)
	ids := func() []string {
		t.Helper()
		found, err := s.FindLostRunners(ctx, cutoff)
		must(t, err, "find lost runners")
		var out []string
		for _, r := range found {
			if r.OrgID != org.ID || r.At.After(cutoff) {
				t.Fatalf("found %+v", r)
			}
			out = append(out, r.RunnerID)
		}
		return out
	}
	if got := ids(); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("lost runners = %v, want only %s", got, old.ID)
	}
	at := cutoff.Add(time.Second)
	ok, err := s.MarkRunnerLost(ctx, org.ID, old.ID, cutoff, at)
	if must(t, err, "mark lost"); !ok {
		t.Fatal("mark lost: not marked")
	}
	if ok, err := s.MarkRunnerLost(ctx, org.ID, old.ID, cutoff, at); err != nil || ok {
		t.Fatalf("mark lost twice: %v, %v", ok, err)
	}
	if got := ids(); len(got) != 0 {
		t.Fatalf("after the mark: lost runners %v", got)
	}
	// Back after the mark, then silent again: a new outage.
	_, err = s.UpdateRunner(ctx, org.ID, old.ID, func(r *runners.Runner) error {
		r.ApplyRenewal(at.Add(time.Second))
		r.Status.Phase = runners.PhaseInactive
		return nil
	})
	must(t, err, "revive")
	cutoff = at.Add(time.Hour)
	if got := ids(); !slices.Equal(got, []string{old.ID}) {
		t.Fatalf("second outage: lost runners %v", got)
	}
	// Back before the mark: nothing to mark.
	_, err = s.UpdateRunner(ctx, org.ID, old.ID, func(r *runners.Runner) error {
		r.ApplyRenewal(at.Add(2 * time.Second))
		r.Status.Phase = runners.PhaseActive
		return nil
	})
	must(t, err, "revive")
	if ok, err := s.MarkRunnerLost(ctx, org.ID, old.ID, cutoff, cutoff); err != nil || ok {
		t.Fatalf("mark an active runner lost: %v, %v", ok, err)
	}
}
