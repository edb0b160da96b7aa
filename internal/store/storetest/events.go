package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// testEvents: the events table records a runner's creation, its user's
// changes, its status changes and its deletion, in commit order; renewals,
// epochs, lost marks, writes that change nothing and rolled-back writes
// record nothing. Pruning keeps ids increasing. (Environments, automations
// and secrets: internal/api/connectapi TestEvents_EachResourceKind.)
func testEvents(t *testing.T, s store.Store) {
	if oldest, latest, err := s.EventBounds(ctx); err != nil || oldest != 0 || latest != 0 {
		t.Fatalf("bounds of an empty table = %d, %d, %v", oldest, latest, err)
	}
	org := newOrg(t, s)
	r := connected(t, s, org.ID, "feed", base)
	update := func(what string, fn func(*runners.Runner) error) {
		t.Helper()
		_, err := s.UpdateRunner(ctx, org.ID, r.ID, fn)
		must(t, err, what)
	}
	update("rename", func(r *runners.Runner) error { r.Name = "feed2"; return nil })
	update("report", func(r *runners.Runner) error { r.Status.Message = "busy"; return nil })
	update("nothing", func(*runners.Runner) error { return nil })
	if _, err := s.UpdateRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
		r.Name = "rolled-back"
		return errors.New("refused")
	}); err == nil {
		t.Fatal("a refused update succeeded")
	}
	_, err := s.RenewRunners(ctx, []runners.Renewal{{OrgID: org.ID, RunnerID: r.ID, At: base.Add(time.Minute)}})
	must(t, err, "renew")
	_, err = s.AcceptRunnerStream(ctx, org.ID, r.ID)
	must(t, err, "accept a stream")
	_, err = s.DeleteRunner(ctx, org.ID, r.ID, func(r *runners.Runner) error {
		r.DeletedAt = base.Add(time.Hour)
		r.Status.Phase = runners.PhaseDeleted
		return nil
	})
	must(t, err, "delete")
	_, err = s.PurgeDeletedRunners(ctx, base.Add(2*time.Hour))
	must(t, err, "purge")

	all, err := s.ReadEvents(ctx, 0, 100)
	must(t, err, "read events")
	// The organization's creation is the first (the console's kinds:
	// testConsoleEvents).
	if len(all) == 0 || all[0].ResourceType != events.TypeOrganization || all[0].ResourceID != org.ID {
		t.Fatalf("first event %+v, want the organization's creation", all)
	}
	evs := all[1:]
	var got []string
	for _, e := range evs {
		if e.OrgID != org.ID || e.ResourceID != r.ID || e.ResourceType != events.TypeRunner || e.EnvironmentID != "" {
			t.Fatalf("event %+v", e)
		}
		got = append(got, e.Operation)
	}
	want := []string{events.OpCreate, events.OpUpdate, events.OpUpdateStatus, events.OpDelete}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("operations = %v, want %v", got, want)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].ID <= evs[i-1].ID {
			t.Fatalf("ids not increasing: %d after %d", evs[i].ID, evs[i-1].ID)
		}
	}
	page, err := s.ReadEvents(ctx, evs[0].ID, 2)
	if must(t, err, "read a page"); len(page) != 2 || page[0].ID != evs[1].ID || page[1].ID != evs[2].ID {
		t.Fatalf("page after %d = %+v", evs[0].ID, page)
	}
	oldest, latest, err := s.EventBounds(ctx)
	if must(t, err, "bounds"); oldest != all[0].ID || latest != evs[len(evs)-1].ID {
		t.Fatalf("bounds = %d, %d, want %d, %d", oldest, latest, all[0].ID, evs[len(evs)-1].ID)
	}

	// Pruning everything leaves the next id above the last.
	n, err := s.PruneEvents(ctx, time.Now().Add(time.Hour))
	if must(t, err, "prune"); n != int64(len(all)) {
		t.Fatalf("pruned %d, want %d", n, len(all))
	}
	again := connected(t, s, org.ID, "again", base)
	evs2, err := s.ReadEvents(ctx, 0, 100)
	if must(t, err, "read after pruning"); len(evs2) != 1 || evs2[0].ID <= latest || evs2[0].ResourceID != again.ID {
		t.Fatalf("after pruning: %+v (last id before %d)", evs2, latest)
	}
}
