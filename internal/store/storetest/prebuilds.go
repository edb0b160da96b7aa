package storetest

import (
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/prebuilds"
	"github.com/runyard/runyard/internal/store"
)

func newPrebuild(orgID, runnerID, url string) *prebuilds.Prebuild {
	return &prebuilds.Prebuild{
		ID: uuid.NewString(), OrgID: orgID, RunnerID: runnerID, ClassID: runnerID, ContextURL: url,
		Phase: prebuilds.PhasePending, TriggeredBy: prebuilds.TriggerManual, Timeout: time.Hour,
		Creator:   identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
		CreatedAt: base, UpdatedAt: base,
	}
}

// testPrebuilds: a prebuild round-trips with its snapshot, lists filter and
// page newest first, another organization sees none, updates are atomic,
// the snapshots a runner keeps are those under way or completed and not
// retired, and a delete removes.
func testPrebuilds(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	runnerID := uuid.NewString()
	a := newPrebuild(org.ID, runnerID, "https://example.com/org/a")
	must(t, s.CreatePrebuild(ctx, a), "create prebuild")
	if a.Seq == 0 {
		t.Fatal("CreatePrebuild did not assign Seq")
	}
	got, err := s.FindPrebuildByID(ctx, org.ID, a.ID)
	must(t, err, "find prebuild")
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, a)
	}
	_, err = s.FindPrebuildByID(ctx, other.ID, a.ID)
	wantCode(t, err, apperr.CodeNotFound, "another organization's prebuild")

	envID := uuid.NewString()
	done := base.Add(time.Minute)
	got, err = s.UpdatePrebuild(ctx, org.ID, a.ID, func(p *prebuilds.Prebuild) error {
		p.EnvironmentID, p.Phase, p.CompletedAt, p.UpdatedAt = envID, prebuilds.PhaseCompleted, &done, done
		p.Snapshot = &prebuilds.Snapshot{Repository: "https://example.com/org/a", Branch: "main", Commit: "abc", SizeBytes: 42, CreatedAt: done}
		return nil
	})
	must(t, err, "update prebuild")
	again, err := s.FindPrebuildByEnvironment(ctx, org.ID, envID)
	must(t, err, "find by environment")
	if !reflect.DeepEqual(again, got) {
		t.Fatalf("after update:\n got %+v\nwant %+v", again, got)
	}
	_, err = s.UpdatePrebuild(ctx, org.ID, a.ID, func(p *prebuilds.Prebuild) error {
		p.Phase = prebuilds.PhaseFailed
		return apperr.Invalid("x", "refused")
	})
	wantCode(t, err, apperr.CodeInvalid, "refused update")
	if again, _ := s.FindPrebuildByID(ctx, org.ID, a.ID); again.Phase != prebuilds.PhaseCompleted {
		t.Fatalf("a refused update changed the phase to %s", again.Phase)
	}

	b := newPrebuild(org.ID, runnerID, "https://example.com/org/b")
	must(t, s.CreatePrebuild(ctx, b), "create second")
	failed := newPrebuild(org.ID, runnerID, "https://example.com/org/b")
	failed.Phase = prebuilds.PhaseFailed
	must(t, s.CreatePrebuild(ctx, failed), "create failed")
	elsewhere := newPrebuild(other.ID, uuid.NewString(), "https://example.com/org/a")
	must(t, s.CreatePrebuild(ctx, elsewhere), "create in another organization")

	ids := func(ps []*prebuilds.Prebuild) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    prebuilds.Filter
		want []string
	}{
		{"All", prebuilds.Filter{OrgID: org.ID}, []string{failed.ID, b.ID, a.ID}},
		{"Page", prebuilds.Filter{OrgID: org.ID, Before: failed.Seq, Limit: 1}, []string{b.ID}},
		{"Phase", prebuilds.Filter{OrgID: org.ID, Phases: []prebuilds.Phase{prebuilds.PhaseCompleted}}, []string{a.ID}},
		{"ContextURL", prebuilds.Filter{OrgID: org.ID, ContextURLs: []string{"https://example.com/org/b"}}, []string{failed.ID, b.ID}},
		{"Runner", prebuilds.Filter{OrgID: org.ID, RunnerIDs: []string{uuid.NewString()}}, []string{}},
		{"Creator", prebuilds.Filter{OrgID: org.ID, CreatorIDs: []string{b.Creator.ID}}, []string{b.ID}},
		{"Trigger", prebuilds.Filter{OrgID: org.ID, Triggers: []prebuilds.Trigger{prebuilds.TriggerScheduled}}, []string{}},
	} {
		got, err := s.FindPrebuilds(ctx, tc.f)
		must(t, err, tc.name)
		if !reflect.DeepEqual(ids(got), tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, ids(got), tc.want)
		}
	}

	kept, err := s.FindKeptSnapshots(ctx, runnerID)
	must(t, err, "kept snapshots")
	if want := []string{a.ID, b.ID}; !reflect.DeepEqual(ids(kept), want) {
		t.Fatalf("kept = %v, want %v (completed and under way, not failed)", ids(kept), want)
	}
	_, err = s.UpdatePrebuild(ctx, org.ID, a.ID, func(p *prebuilds.Prebuild) error { p.Snapshot.Deleted = true; return nil })
	must(t, err, "retire snapshot")
	kept, err = s.FindKeptSnapshots(ctx, runnerID)
	must(t, err, "kept snapshots")
	if want := []string{b.ID}; !reflect.DeepEqual(ids(kept), want) {
		t.Fatalf("kept after retention = %v, want %v", ids(kept), want)
	}

	// Concurrent updates never lose each other.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdatePrebuild(ctx, org.ID, b.ID, func(p *prebuilds.Prebuild) error {
				p.FailureMessage += "x"
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := s.FindPrebuildByID(ctx, org.ID, b.ID); got.FailureMessage != "xxxxxxxx" {
		t.Fatalf("concurrent updates: %q", got.FailureMessage)
	}

	wantCode(t, s.DeletePrebuild(ctx, other.ID, a.ID), apperr.CodeNotFound, "delete another organization's")
	must(t, s.DeletePrebuild(ctx, org.ID, a.ID), "delete")
	wantCode(t, s.DeletePrebuild(ctx, org.ID, a.ID), apperr.CodeNotFound, "delete twice")
	_, err = s.FindPrebuildByID(ctx, org.ID, a.ID)
	wantCode(t, err, apperr.CodeNotFound, "deleted prebuild")
}

// testPrebuildSchedules: schedules round-trip per organization, are due
// when their time came, are claimed once, and the prebuilds under way are
// listed across organizations.
func testPrebuildSchedules(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	sc := &prebuilds.Schedule{
		ID: uuid.NewString(), OrgID: org.ID, ContextURL: "https://example.com/org/a", ClassID: uuid.NewString(),
		Interval: time.Hour, NextRunAt: base, Creator: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalUser}, CreatedAt: base,
	}
	must(t, s.CreatePrebuildSchedule(ctx, sc), "create schedule")
	got, err := s.FindPrebuildSchedules(ctx, org.ID)
	must(t, err, "list schedules")
	if len(got) != 1 || !reflect.DeepEqual(got[0], sc) {
		t.Fatalf("round trip: %+v, want %+v", got, sc)
	}
	if got, _ := s.FindPrebuildSchedules(ctx, other.ID); len(got) != 0 {
		t.Fatalf("another organization sees %d schedules", len(got))
	}
	if due, _ := s.FindDueSchedules(ctx, base.Add(-time.Second), 10); len(due) != 0 {
		t.Fatalf("due before its time: %v", due)
	}
	due, err := s.FindDueSchedules(ctx, base, 10)
	must(t, err, "due")
	if len(due) != 1 {
		t.Fatalf("due: %d, want 1", len(due))
	}
	// Two replicas claim the same run: one wins.
	ok1, err1 := s.ClaimSchedule(ctx, sc.ID, base, base.Add(time.Hour))
	ok2, err2 := s.ClaimSchedule(ctx, sc.ID, base, base.Add(time.Hour))
	if err1 != nil || err2 != nil || !ok1 || ok2 {
		t.Fatalf("claims: %v %v, %v %v; want one", ok1, err1, ok2, err2)
	}
	must(t, s.SetScheduleLastPrebuild(ctx, sc.ID, "p1"), "last prebuild")
	got, _ = s.FindPrebuildSchedules(ctx, org.ID)
	if got[0].LastPrebuildID != "p1" || !got[0].NextRunAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("after claim: %+v", got[0])
	}
	wantCode(t, s.DeletePrebuildSchedule(ctx, other.ID, sc.ID), apperr.CodeNotFound, "delete another organization's")
	must(t, s.DeletePrebuildSchedule(ctx, org.ID, sc.ID), "delete")

	p := newPrebuild(other.ID, uuid.NewString(), "https://example.com/x")
	must(t, s.CreatePrebuild(ctx, p), "create prebuild")
	done := newPrebuild(org.ID, uuid.NewString(), "https://example.com/x")
	done.Phase = prebuilds.PhaseCompleted
	must(t, s.CreatePrebuild(ctx, done), "create completed")
	under, err := s.FindPrebuildsUnderWay(ctx, 100)
	must(t, err, "under way")
	found := false
	for _, x := range under {
		found = found || x.ID == p.ID
		if x.ID == done.ID {
			t.Fatal("a completed prebuild is under way")
		}
	}
	if !found {
		t.Fatal("a pending prebuild of another organization is not under way")
	}
}
