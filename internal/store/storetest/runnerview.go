package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// ViewHandles are two handles on one database whose runner views
// (runners.Views) are tested together.
type ViewHandles struct {
	// A and B are the handles. Apart is set when they keep views of
	// their own (two replicas): a change through A then reaches B's view
	// by the database's notices, within a bounded wait; otherwise at once.
	A, B  store.Store
	Apart bool
	// Bypass renames runner id in the database without any handle's or
	// the database's notice, as a write no one hears about would.
	Bypass func(t *testing.T, id, name string)
}

// viewWait bounds how long a change may take to reach another replica's
// view: far below the minute an entry of the view is trusted for, so a
// view that missed the change fails the test.
const viewWait = 20 * time.Second

// RunnerView checks that the runner view serves reads from memory and
// that every change through A shows in A's view at once (read your writes)
// and in B's (at once or, apart, within viewWait): a rename, a renewal, a
// report, a runner created, a runner deleted, tombstones purged.
func RunnerView(t *testing.T, h ViewHandles) {
	va, ok := h.A.(runners.Views)
	if !ok {
		t.Fatal("handle A keeps no runner view")
	}
	vb, ok := h.B.(runners.Views)
	if !ok {
		t.Fatal("handle B keeps no runner view")
	}
	org := newOrg(t, h.A)
	rs := make([]*runners.Runner, 3)
	for i := range rs {
		rs[i] = connected(t, h.A, org.ID, fmt.Sprintf("view-%d", i), base)
	}
	page := runners.Filter{OrgID: org.ID, Limit: 10}
	names := func(v runners.Views) (string, error) {
		list, err := v.ViewRunners(ctx, page)
		if err != nil {
			return "", err
		}
		out := ""
		for _, r := range list {
			out += r.Name + " "
		}
		return out, nil
	}
	// What a view holds is a copy: changing what a read returned changes
	// nothing for the next read.
	for _, v := range []runners.Views{va, vb} {
		got, err := v.ViewRunner(ctx, org.ID, rs[0].ID)
		must(t, err, "view runner")
		got.Name, got.Status.Capabilities = "changed by the caller", append(got.Status.Capabilities, "x")
		if _, err := names(v); err != nil {
			t.Fatalf("view page: %v", err)
		}
		if again, _ := v.ViewRunner(ctx, org.ID, rs[0].ID); again.Name != "view-0" || len(again.Status.Capabilities) != 0 {
			t.Fatalf("the view handed out what it holds: %q %v", again.Name, again.Status.Capabilities)
		}
	}
	if _, err := vb.ViewRunner(ctx, "another-org", rs[0].ID); err == nil {
		t.Fatal("the view answered a runner to another organization")
	}

	// Reads come from memory: a change nobody hears about stays unseen
	// (for the minute an entry is trusted), though the store has it.
	h.Bypass(t, rs[0].ID, "bypassed")
	got, err := h.B.FindRunnerOrTombstone(ctx, org.ID, rs[0].ID)
	must(t, err, "find runner")
	if got.Name != "bypassed" {
		t.Fatalf("the bypass did not rename the runner: %q", got.Name)
	}
	if got, _ := vb.ViewRunner(ctx, org.ID, rs[0].ID); got.Name != "view-0" {
		t.Fatalf("view of B read the store, not memory: %q", got.Name)
	}

	later := base.Add(time.Hour)
	for _, tc := range []struct {
		name   string
		change func(t *testing.T)
		// seen reports whether view v shows the change.
		seen func(v runners.Views) (bool, string)
	}{
		{"Renamed", func(t *testing.T) {
			_, err := h.A.UpdateRunner(ctx, org.ID, rs[0].ID, func(r *runners.Runner) error { r.Name = "renamed"; return nil })
			must(t, err, "rename")
		}, func(v runners.Views) (bool, string) {
			r, err := v.ViewRunner(ctx, org.ID, rs[0].ID)
			list, lerr := names(v)
			return err == nil && lerr == nil && r.Name == "renamed" && list == "renamed view-1 view-2 ", fmt.Sprintf("%v %q, page %q %v", err, r.Name, list, lerr)
		}},
		{"Renewed", func(t *testing.T) {
			_, err := h.A.RenewRunners(ctx, []runners.Renewal{{OrgID: org.ID, RunnerID: rs[1].ID, At: later}})
			must(t, err, "renew")
		}, func(v runners.Views) (bool, string) {
			r, err := v.ViewRunner(ctx, org.ID, rs[1].ID)
			return err == nil && r.LastSeen.Equal(later), fmt.Sprintf("%v last seen %v", err, r.LastSeen)
		}},
		{"Reported", func(t *testing.T) {
			_, err := h.A.UpdateRunner(ctx, org.ID, rs[1].ID, func(r *runners.Runner) error {
				r.Status.Phase, r.Status.Message = runners.PhaseDegraded, "disk full"
				return nil
			})
			must(t, err, "report")
		}, func(v runners.Views) (bool, string) {
			list, err := v.ViewRunners(ctx, page)
			if err != nil || len(list) < 2 {
				return false, fmt.Sprint(err, len(list))
			}
			return list[1].Status.Phase == runners.PhaseDegraded && list[1].Status.Message == "disk full",
				fmt.Sprintf("%s %q", list[1].Status.Phase, list[1].Status.Message)
		}},
		{"Created", func(t *testing.T) {
			connected(t, h.A, org.ID, "view-3", base)
		}, func(v runners.Views) (bool, string) {
			list, err := names(v)
			return err == nil && list == "renamed view-1 view-2 view-3 ", fmt.Sprintf("%q %v", list, err)
		}},
		{"Deleted", func(t *testing.T) {
			_, err := h.A.DeleteRunner(ctx, org.ID, rs[2].ID, func(r *runners.Runner) error {
				r.DeletedAt, r.Status.Phase = later, runners.PhaseDeleted
				return nil
			})
			must(t, err, "delete")
		}, func(v runners.Views) (bool, string) {
			r, err := v.ViewRunner(ctx, org.ID, rs[2].ID)
			list, lerr := names(v)
			return err == nil && r.Deleted() && lerr == nil && list == "renamed view-1 view-3 ",
				fmt.Sprintf("%v deleted %v, page %q %v", err, r.Deleted(), list, lerr)
		}},
		{"Purged", func(t *testing.T) {
			_, err := h.A.PurgeDeletedRunners(ctx, later.Add(time.Second))
			must(t, err, "purge")
		}, func(v runners.Views) (bool, string) {
			_, err := v.ViewRunner(ctx, org.ID, rs[2].ID)
			return err != nil, fmt.Sprintf("tombstone still read: %v", err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Both views hold the runners and the page before the change.
			for _, v := range []runners.Views{va, vb} {
				for _, r := range rs {
					if _, err := v.ViewRunner(ctx, org.ID, r.ID); err != nil && tc.name != "Purged" {
						t.Fatalf("warm the view: %v", err)
					}
				}
				if _, err := names(v); err != nil {
					t.Fatalf("warm the view's page: %v", err)
				}
			}
			tc.change(t)
			if ok, got := tc.seen(va); !ok {
				t.Fatalf("A's own view does not show its change: %s", got)
			}
			deadline := time.Now().Add(viewWait)
			for {
				ok, got := tc.seen(vb)
				if ok {
					break
				}
				if !h.Apart || time.Now().After(deadline) {
					t.Fatalf("B's view does not show A's change: %s", got)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
