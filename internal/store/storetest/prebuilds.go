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
