package storetest

import (
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
)

// This file is the conformance of pod placement, pod updates and agent
// types. Placement functions here are simple stand-ins: the store's part is
// to load the candidates, serialize placements and store what the function
// decided; the rules are the domain's and tested there.

// liveRunner stores a runner of org that is ACTIVE and seen at base, with
// room for maxPods pods.
func liveRunner(t *testing.T, s store.Store, orgID, name string, maxPods int) *runners.Runner {
	t.Helper()
	r := newRunner(orgID, name)
	r.Status.Phase, r.LastSeen = runners.PhaseActive, base
	r.Report = runners.Report{MaxPods: maxPods, AgentTypes: []string{"claude-code"}, Labels: []string{"gpu"}}
	must(t, s.CreateRunner(ctx, r, nil), "create runner "+name)
	return r
}

func newPod(orgID string, i int) *pods.Pod {
	return &pods.Pod{
		Key: fmt.Sprintf("pod-%s-%03d", orgID[:8], i), OrgID: orgID, Status: pods.StatusPending,
		DesiredStatus: pods.StatusRunning, AgentTypeID: "claude-code", InitialPrompt: "Fix the login bug",
		Labels: []string{"gpu"}, Env: map[string]string{"A": "1"},
		Spec:      pods.RunSpec{Argv: []string{"claude", "Fix the login bug"}, Env: map[string]string{"A": "1", pods.EnvPodKey: "k"}},
		CreatedAt: base.Add(time.Duration(i) * time.Second),
	}
}

// firstFree places a pod on the first candidate below its maximum, or
// leaves it pending with the reason "full".
func firstFree(p *pods.Pod, cands []*pods.Candidate) error {
	for _, c := range cands {
		if c.Pods < c.Runner.Report.MaxPods {
			p.RunnerID, p.RunnerSeq, p.Reason = c.Runner.ID, c.Runner.Seq, ""
			c.Pods++
			return nil
		}
	}
	p.RunnerID, p.RunnerSeq, p.Reason = "", 0, "full"
	return nil
}

func testPodPlacement(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	live := liveRunner(t, s, org.ID, "live", 2)
	silent := liveRunner(t, s, org.ID, "silent", 2)
	_, err := s.UpdateRunner(ctx, org.ID, silent.ID, func(r *runners.Runner) error {
		r.LastSeen = base.Add(-time.Hour)
		return nil
	})
	must(t, err, "silence a runner")
	inactive := liveRunner(t, s, org.ID, "inactive", 2)
	_, err = s.UpdateRunner(ctx, org.ID, inactive.ID, func(r *runners.Runner) error {
		r.Status.Phase = runners.PhaseInactive
		return nil
	})
	must(t, err, "make a runner inactive")
	liveRunner(t, s, other.ID, "elsewhere", 2)
	// One active pod on the live runner already; finished ones hold no place.
	held := newPod(org.ID, 0)
	held.RunnerID, held.Status = live.ID, pods.StatusRunning
	must(t, s.CreatePod(ctx, held), "create running pod")
	done := newPod(org.ID, 1)
	done.RunnerID, done.Status = live.ID, pods.StatusTerminated
	must(t, s.CreatePod(ctx, done), "create finished pod")

	filter := pods.CandidateFilter{OrgID: org.ID, LiveAfter: base.Add(-time.Minute)}
	t.Run("Candidates", func(t *testing.T) {
		var seen []*pods.Candidate
		p := newPod(org.ID, 2)
		must(t, s.CreatePlacedPod(ctx, p, filter, func(p *pods.Pod, cands []*pods.Candidate) error {
			seen = cands
			return firstFree(p, cands)
		}), "create placed pod")
		if len(seen) != 1 || seen[0].Runner.ID != live.ID || seen[0].Pods != 2 {
			t.Fatalf("candidates = %+v, want only the live runner, its one pod counted and the new one added", seen)
		}
		if !reflect.DeepEqual(seen[0].Runner.Report, live.Report) {
			t.Errorf("candidate report = %+v, want %+v", seen[0].Runner.Report, live.Report)
		}
		got, err := s.FindPodByKey(ctx, org.ID, p.Key)
		must(t, err, "find pod")
		if got.RunnerSeq != live.Seq || p.Seq == 0 {
			t.Errorf("runner seq = %d, want %d; seq %d", got.RunnerSeq, live.Seq, p.Seq)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("pod round trip:\n got %+v\nwant %+v", got, p)
		}
	})
	t.Run("RequestedRunner", func(t *testing.T) {
		// The requested runner is a candidate whatever its state.
		f := filter
		f.Seq = silent.Seq
		var seen []*pods.Candidate
		must(t, s.CreatePlacedPod(ctx, newPod(org.ID, 3), f, func(p *pods.Pod, cands []*pods.Candidate) error {
			seen = cands
			p.Reason = "kept pending"
			return nil
		}), "create pod")
		if len(seen) != 2 || seen[0].Runner.ID != live.ID || seen[1].Runner.ID != silent.ID {
			t.Fatalf("candidates = %v, want the live runner and the requested one", seen)
		}
	})
	t.Run("ErrPlaceChangesNothing", func(t *testing.T) {
		p := newPod(org.ID, 4)
		err := s.CreatePlacedPod(ctx, p, filter, func(*pods.Pod, []*pods.Candidate) error {
			return apperr.FailedPrecondition("no")
		})
		wantCode(t, err, apperr.CodeFailedPrecondition, "refused placement")
		_, err = s.FindPodByKey(ctx, org.ID, p.Key)
		wantCode(t, err, apperr.CodeNotFound, "refused pod")
	})
	t.Run("ErrDuplicateKey", func(t *testing.T) {
		p := newPod(org.ID, 2)
		wantCode(t, s.CreatePlacedPod(ctx, p, filter, firstFree), apperr.CodeConflict, "duplicate key")
	})
	t.Run("FindByRunnerSeq", func(t *testing.T) {
		got, total, err := s.FindPods(ctx, pods.Filter{OrgID: org.ID, RunnerSeq: live.Seq, Limit: 10})
		must(t, err, "find pods")
		if total != 3 || len(got) != 3 {
			t.Fatalf("pods of the live runner: total %d, %d pods, want 3", total, len(got))
		}
		for _, p := range got {
			if p.RunnerSeq != live.Seq {
				t.Errorf("pod %s runner seq %d, want %d", p.Key, p.RunnerSeq, live.Seq)
			}
		}
		_, total, err = s.FindPods(ctx, pods.Filter{OrgID: org.ID, RunnerSeq: 1 << 40, Limit: 10})
		must(t, err, "find pods of no runner")
		if total != 0 {
			t.Errorf("pods of a missing runner: %d, want 0", total)
		}
	})
	t.Run("OtherOrganization", func(t *testing.T) {
		_, err := s.FindPodByKey(ctx, other.ID, held.Key)
		wantCode(t, err, apperr.CodeNotFound, "another organization's pod")
	})
}

// testPodPlacementConcurrent creates pods at once against one runner with
// room for m: exactly m get a place.
func testPodPlacementConcurrent(t *testing.T, s store.Store) {
	const n, m = 16, 5
	org := newOrg(t, s)
	r := liveRunner(t, s, org.ID, "one", m)
	filter := pods.CandidateFilter{OrgID: org.ID, LiveAfter: base.Add(-time.Minute)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CreatePlacedPod(ctx, newPod(org.ID, i), filter, firstFree)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent create")
	}
	counts, err := s.CountActivePods(ctx, org.ID)
	must(t, err, "count")
	if counts[r.ID] != m {
		t.Fatalf("%d pods placed on a runner with room for %d", counts[r.ID], m)
	}
	_, total, err := s.FindPods(ctx, pods.Filter{OrgID: org.ID, Status: pods.StatusPending, Limit: 100})
	must(t, err, "find pods")
	if total != n {
		t.Fatalf("%d pods stored, want %d", total, n)
	}
}

func testPlacePendingPods(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	filter := pods.CandidateFilter{OrgID: org.ID, LiveAfter: base.Add(-time.Minute)}
	var waiting []*pods.Pod
	for i := range 3 {
		p := newPod(org.ID, i)
		must(t, s.CreatePlacedPod(ctx, p, filter, firstFree), "create pending pod")
		if p.RunnerID != "" || p.Reason != "full" {
			t.Fatalf("pod %d placed without runners: %+v", i, p)
		}
		waiting = append(waiting, p)
	}
	terminated := newPod(org.ID, 3)
	terminated.Status = pods.StatusTerminated
	must(t, s.CreatePod(ctx, terminated), "create terminated pod")
	must(t, s.CreatePod(ctx, newPod(other.ID, 0)), "create another organization's pod")

	orgs, err := s.FindOrgsWithPendingPods(ctx)
	must(t, err, "find organizations")
	if len(orgs) != 2 {
		t.Errorf("organizations with pending pods = %v, want 2", orgs)
	}

	r := liveRunner(t, s, org.ID, "arrives", 2)
	var order []string
	placed, err := s.PlacePendingPods(ctx, filter, func(p *pods.Pod, cands []*pods.Candidate) error {
		order = append(order, p.Key)
		if p.Key == waiting[2].Key {
			p.Reason = "still full"
			return nil
		}
		return firstFree(p, cands)
	})
	must(t, err, "place pending")
	if want := []string{waiting[0].Key, waiting[1].Key, waiting[2].Key}; !reflect.DeepEqual(order, want) {
		t.Errorf("offered %v, want the pending pods without runner, oldest first: %v", order, want)
	}
	if len(placed) != 2 || placed[0].Key != waiting[0].Key || placed[1].Key != waiting[1].Key {
		t.Fatalf("placed %v, want the two oldest", placed)
	}
	for i, want := range []struct{ runner, reason string }{{r.ID, ""}, {r.ID, ""}, {"", "still full"}} {
		got, err := s.FindPodByKey(ctx, org.ID, waiting[i].Key)
		must(t, err, "find pod")
		if got.RunnerID != want.runner || got.Reason != want.reason || got.Status != pods.StatusPending {
			t.Errorf("pod %d = runner %q reason %q status %s, want runner %q reason %q, pending", i, got.RunnerID, got.Reason, got.Status, want.runner, want.reason)
		}
	}
	counts, err := s.CountActivePods(ctx, org.ID)
	must(t, err, "count")
	if counts[r.ID] != 2 {
		t.Errorf("active pods on the runner = %d, want 2", counts[r.ID])
	}
	t.Run("ErrPlaceChangesNothing", func(t *testing.T) {
		_, err := s.PlacePendingPods(ctx, filter, func(p *pods.Pod, cands []*pods.Candidate) error {
			p.Reason = "changed"
			if p.Key == waiting[2].Key {
				return apperr.FailedPrecondition("no")
			}
			return nil
		})
		wantCode(t, err, apperr.CodeFailedPrecondition, "refused placement")
		got, err := s.FindPodByKey(ctx, org.ID, waiting[2].Key)
		must(t, err, "find pod")
		if got.Reason != "still full" {
			t.Errorf("reason = %q after a refused pass, want it unchanged", got.Reason)
		}
	})
}

func testUpdatePod(t *testing.T, s store.Store) {
	org := newOrg(t, s)
	r := liveRunner(t, s, org.ID, "r", 2)
	p := newPod(org.ID, 0)
	p.RunnerID = r.ID
	must(t, s.CreatePod(ctx, p), "create pod")
	end := base.Add(time.Minute)
	code := 0
	got, err := s.UpdatePod(ctx, org.ID, p.Key, func(p *pods.Pod) error {
		p.Status, p.DesiredStatus, p.FinishedAt, p.StartedAt, p.ExitCode = pods.StatusTerminated, pods.StatusTerminated, &end, &end, &code
		p.Reason = "done"
		return nil
	})
	must(t, err, "update pod")
	read, err := s.FindPodByKey(ctx, org.ID, p.Key)
	must(t, err, "find pod")
	if !reflect.DeepEqual(read, got) || read.Status != pods.StatusTerminated || read.DesiredStatus != pods.StatusTerminated ||
		read.RunnerSeq != r.Seq || read.ExitCode == nil || *read.ExitCode != 0 {
		t.Fatalf("updated pod:\n got %+v\nread %+v", got, read)
	}
	_, err = s.UpdatePod(ctx, org.ID, p.Key, func(p *pods.Pod) error {
		p.Reason = "never stored"
		return apperr.FailedPrecondition("no")
	})
	wantCode(t, err, apperr.CodeFailedPrecondition, "refused update")
	if read, _ := s.FindPodByKey(ctx, org.ID, p.Key); read.Reason != "done" {
		t.Errorf("reason = %q after a refused update", read.Reason)
	}
	_, err = s.UpdatePod(ctx, org.ID, "pod-missing", func(*pods.Pod) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "missing pod")
}

func testAgentTypes(t *testing.T, s store.Store) {
	org, other := newOrg(t, s), newOrg(t, s)
	a := &pods.AgentType{ID: "echo-agent", OrgID: org.ID, Name: "Echo", Command: []string{"/bin/sh", "-c", "echo {{prompt}}"},
		Env: map[string]string{"MODE": "test"}, CreatedAt: base}
	must(t, s.CreateAgentType(ctx, a), "create agent type")
	b := &pods.AgentType{ID: "another", OrgID: org.ID, Name: "B", Command: []string{"b"}, Env: map[string]string{}, CreatedAt: base}
	must(t, s.CreateAgentType(ctx, b), "create agent type")
	got, err := s.FindAgentType(ctx, org.ID, a.ID)
	must(t, err, "find agent type")
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("agent type round trip:\n got %+v\nwant %+v", got, a)
	}
	dup := *a
	dup.Name = "Other"
	wantCode(t, s.CreateAgentType(ctx, &dup), apperr.CodeConflict, "duplicate agent type")
	// Another organization may use the same ID.
	same := *a
	same.OrgID = other.ID
	must(t, s.CreateAgentType(ctx, &same), "same ID in another organization")
	list, err := s.FindAgentTypes(ctx, org.ID)
	must(t, err, "list agent types")
	if len(list) != 2 || list[0].ID != "another" || list[1].ID != "echo-agent" {
		t.Fatalf("agent types = %+v, want another and echo-agent, by ID", list)
	}
	_, err = s.FindAgentType(ctx, org.ID, "missing")
	wantCode(t, err, apperr.CodeNotFound, "missing agent type")
	empty := newOrg(t, s)
	if list, err := s.FindAgentTypes(ctx, empty.ID); err != nil || list == nil || len(list) != 0 {
		t.Errorf("agent types of an empty organization = %v, %v; want an empty list", list, err)
	}

	// Update: a failing function changes nothing; the other
	// organization's type of the same ID is left alone.
	_, err = s.UpdateAgentType(ctx, org.ID, a.ID, func(x *pods.AgentType) error {
		x.Name = "Lost"
		return apperr.Invalid("name", "refused")
	})
	wantCode(t, err, apperr.CodeInvalid, "refused update")
	upd, err := s.UpdateAgentType(ctx, org.ID, a.ID, func(x *pods.AgentType) error {
		x.Name, x.Command, x.Env = "Echo 2", []string{"/bin/echo", "{{prompt}}"}, map[string]string{}
		return nil
	})
	must(t, err, "update agent type")
	got, err = s.FindAgentType(ctx, org.ID, a.ID)
	must(t, err, "find updated agent type")
	want := &pods.AgentType{ID: a.ID, OrgID: org.ID, Name: "Echo 2", Command: []string{"/bin/echo", "{{prompt}}"},
		Env: map[string]string{}, CreatedAt: base}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(upd, want) {
		t.Fatalf("updated agent type:\n got %+v\nreturned %+v\nwant %+v", got, upd, want)
	}
	if o, err := s.FindAgentType(ctx, other.ID, a.ID); err != nil || o.Name != "Echo" {
		t.Errorf("the other organization's type = %+v, %v; want it unchanged", o, err)
	}
	_, err = s.UpdateAgentType(ctx, org.ID, "missing", func(*pods.AgentType) error { return nil })
	wantCode(t, err, apperr.CodeNotFound, "update a missing agent type")

	must(t, s.DeleteAgentType(ctx, org.ID, a.ID), "delete agent type")
	_, err = s.FindAgentType(ctx, org.ID, a.ID)
	wantCode(t, err, apperr.CodeNotFound, "deleted agent type")
	wantCode(t, s.DeleteAgentType(ctx, org.ID, a.ID), apperr.CodeNotFound, "delete twice")
	if _, err := s.FindAgentType(ctx, other.ID, a.ID); err != nil {
		t.Errorf("the other organization's type after delete: %v", err)
	}
}
