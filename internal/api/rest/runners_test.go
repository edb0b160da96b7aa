package rest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/testutil"
)

func names(list []runnerJSON) []string {
	out := make([]string, len(list))
	for i, r := range list {
		out[i] = r.Name
	}
	return out
}

// statusOf returns "" when runner id has want, or what it has instead.
func statusOf(t *testing.T, a *api, id int64, want string) string {
	if got := a.runner(t, id).Status; got != want {
		return "status " + got
	}
	return ""
}

func wantTime(t *testing.T, field, v string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, v)
	if err != nil {
		t.Errorf("%s = %q: not RFC 3339: %v", field, v, err)
	}
	return tm
}

// TestRunners_Lifecycle follows one runner that connects, drains, comes back
// and fills up, next to one whose daemon never connected.
func TestRunners_Lifecycle(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			org := orgID(t, st)

			idleName, busyName := name("idle"), name("busy")
			before := time.Now().UTC().Truncate(time.Second)
			idleID, _ := adm.createRunner(t, idleName)
			busyID, x := adm.createRunner(t, busyName)
			connectRunner(t, ts, x)
			idle, busy := a.seqOf(t, idleName), a.seqOf(t, busyName)
			eventually(t, "the daemon connects", func() string { return statusOf(t, a, busy, "online") })

			t.Run("List", func(t *testing.T) {
				list := a.runners(t, "/runners")
				if got, want := names(list), []string{idleName, busyName}; !slices.Equal(got, want) {
					t.Fatalf("runners = %q, want %q (oldest first)", got, want)
				}
				if list[0].ID >= list[1].ID || list[0].ID <= 0 {
					t.Errorf("ids %d, %d: want positive and increasing", list[0].ID, list[1].ID)
				}
				r := list[0]
				if r.Status != "offline" || r.LastHeartbeatAt != nil || r.Version != "" || r.MaxPods != 0 || r.PodCount != 0 {
					t.Errorf("never-connected runner = %+v, want offline, no heartbeat, nothing reported", r)
				}
				if r.Labels == nil || len(r.Labels) != 0 {
					t.Errorf("labels = %#v, want []", r.Labels)
				}
				r = list[1]
				want := runnerJSON{ID: busy, Name: busyName, Status: "online", Version: "1.2.0", OS: runtime.GOOS, Arch: runtime.GOARCH,
					Labels: []string{"gpu", "high-memory"}, MaxPods: 2}
				if r.ID != want.ID || r.Name != want.Name || r.Status != want.Status || r.Version != want.Version || r.OS != want.OS ||
					r.Arch != want.Arch || !slices.Equal(r.Labels, want.Labels) || r.MaxPods != want.MaxPods || r.PodCount != 0 {
					t.Errorf("connected runner = %+v, want %+v", r, want)
				}
				if r.LastHeartbeatAt == nil {
					t.Fatal("last_heartbeat_at is null for a connected runner")
				}
				if hb, created := wantTime(t, "last_heartbeat_at", *r.LastHeartbeatAt), wantTime(t, "created_at", r.CreatedAt); hb.Before(created) || created.Before(before) {
					t.Errorf("created_at %v, last_heartbeat_at %v: want created after the test began and heartbeat after creation", created, hb)
				}
			})

			t.Run("Get", func(t *testing.T) {
				list := a.runners(t, "/runners")
				for _, want := range list {
					got := a.runner(t, want.ID)
					// Renewals move the heartbeat between two requests.
					got.LastHeartbeatAt, want.LastHeartbeatAt = nil, nil
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Errorf("GET /runners/%d = %+v, want the list's %+v", want.ID, got, want)
					}
				}
			})

			t.Run("Available", func(t *testing.T) {
				if got := names(a.runners(t, "/runners/available")); !slices.Equal(got, []string{busyName}) {
					t.Fatalf("available = %q, want only %q", got, busyName)
				}
			})

			t.Run("Draining", func(t *testing.T) {
				adm.setDesiredPhase(t, busyID, gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE)
				if got := names(a.runners(t, "/runners/available")); len(got) != 0 {
					t.Errorf("available while draining = %q, want none", got)
				}
				// Draining is not going offline.
				if got := a.runner(t, busy).Status; got != "online" {
					t.Errorf("status while draining = %q, want online", got)
				}
				// The daemon's own report of draining must arrive before the
				// runner is made active again: one arriving late would take
				// the runner out of the available list in a later subtest.
				daemonDraining := func(want bool) func() string {
					return func() string {
						r, err := st.FindRunnerByID(context.Background(), org, busyID)
						mustOK(t, err, "find the runner")
						if r.Report.Draining != want {
							return fmt.Sprintf("daemon reports draining=%t", r.Report.Draining)
						}
						return ""
					}
				}
				eventually(t, "the daemon reports draining", daemonDraining(true))
				adm.setDesiredPhase(t, busyID, gitpodv1.RunnerPhase_RUNNER_PHASE_ACTIVE)
				eventually(t, "the daemon reports taking work", daemonDraining(false))
				if got := names(a.runners(t, "/runners/available")); !slices.Equal(got, []string{busyName}) {
					t.Errorf("available after draining = %q, want %q", got, busyName)
				}
			})

			t.Run("PodCount", func(t *testing.T) {
				// Neither finished pods, nor pending ones not yet placed, nor
				// pods of another runner hold a place.
				mustCreatePod(t, st, org, busyID, pods.StatusTerminated)
				mustCreatePod(t, st, org, busyID, pods.StatusFailed)
				mustCreatePod(t, st, org, "", pods.StatusPending)
				mustCreatePod(t, st, org, idleID, pods.StatusRunning)
				mustCreatePod(t, st, org, busyID, pods.StatusRunning)
				if got := a.runner(t, busy).PodCount; got != 1 {
					t.Errorf("pod_count = %d, want 1", got)
				}
				if got := a.runner(t, idle).PodCount; got != 1 {
					t.Errorf("pod_count of the idle runner = %d, want 1", got)
				}
				if got := names(a.runners(t, "/runners/available")); !slices.Equal(got, []string{busyName}) {
					t.Errorf("available with one free place = %q, want %q", got, busyName)
				}
				// A pending pod placed on the runner takes its last place.
				mustCreatePod(t, st, org, busyID, pods.StatusPending)
				r, _ := byName(t, a.runners(t, "/runners"), busyName)
				if r.PodCount != 2 || r.MaxPods != 2 || r.Status != "online" {
					t.Errorf("full runner = %+v, want pod_count 2 of max_pods 2, online", r)
				}
				if got := names(a.runners(t, "/runners/available")); len(got) != 0 {
					t.Errorf("available when full = %q, want none", got)
				}
				if got := a.pods(t, busy, "").Total; got != 4 {
					t.Errorf("pods total = %d, want 4", got)
				}
			})
		})
	}
}

// TestRunners_GoesOffline checks that a runner whose daemon stopped becomes
// offline once the server's runner timeout passes, and leaves the available
// list.
func TestRunners_GoesOffline(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			// A short timeout, so the test need not wait the default 30s;
			// the test never depends on how long anything takes.
			ts, _ := startServerWithStore(t, backend, time.Second)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			n := name("leaving")
			_, x := adm.createRunner(t, n)
			stop := connectRunner(t, ts, x)
			id := a.seqOf(t, n)
			eventually(t, "the runner is available", func() string {
				if got := names(a.runners(t, "/runners/available")); !slices.Equal(got, []string{n}) {
					return fmt.Sprintf("available %q", got)
				}
				return ""
			})
			stop()
			eventually(t, "the runner goes offline", func() string { return statusOf(t, a, id, "offline") })
			if got := names(a.runners(t, "/runners/available")); len(got) != 0 {
				t.Errorf("available after the daemon stopped = %q, want none", got)
			}
			if a.runner(t, id).LastHeartbeatAt == nil {
				t.Error("last_heartbeat_at is null after the runner went offline, want its last heartbeat")
			}
		})
	}
}

func TestRunners_Pods(t *testing.T) {
	for _, backend := range testutil.Backends() {
		t.Run(string(backend), func(t *testing.T) {
			ts, st := startServerWithStore(t, backend, 0)
			adm := newAdmin(ts, testutil.AdminToken)
			a := newAPI(ts, "default", bearer(testutil.AdminToken))
			org := orgID(t, st)
			n, other := name("pods"), name("other")
			runnerID, _ := adm.createRunner(t, n)
			otherID, _ := adm.createRunner(t, other)
			id := a.seqOf(t, n)

			t.Run("Empty", func(t *testing.T) {
				got := a.pods(t, id, "")
				if len(got.Pods) != 0 || got.Total != 0 || got.Limit != 50 || got.Offset != 0 {
					t.Errorf("pods of an empty runner = %+v, want [], total 0, limit 50, offset 0", got)
				}
			})

			// Seven pods, created in this order; the API lists newest first.
			statuses := []pods.Status{pods.StatusRunning, pods.StatusTerminated, pods.StatusRunning, pods.StatusFailed,
				pods.StatusPending, pods.StatusRunning, pods.StatusTerminated}
			var created []*pods.Pod
			for _, s := range statuses {
				created = append(created, mustCreatePod(t, st, org, runnerID, s))
			}
			mustCreatePod(t, st, org, otherID, pods.StatusRunning)
			slices.Reverse(created)
			keys := func(ps []*pods.Pod) []string {
				out := make([]string, len(ps))
				for i, p := range ps {
					out[i] = p.Key
				}
				return out
			}
			gotKeys := func(b podsBody) []string {
				out := make([]string, len(b.Pods))
				for i, p := range b.Pods {
					out[i] = p.Key
				}
				return out
			}

			t.Run("Default", func(t *testing.T) {
				got := a.pods(t, id, "")
				if g, w := gotKeys(got), keys(created); !slices.Equal(g, w) {
					t.Fatalf("keys = %q, want %q", g, w)
				}
				if got.Total != 7 || got.Limit != 50 || got.Offset != 0 {
					t.Errorf("total, limit, offset = %d, %d, %d, want 7, 50, 0", got.Total, got.Limit, got.Offset)
				}
				for i, p := range got.Pods {
					want := created[i]
					if p.Status != string(want.Status) || p.AgentTypeID != want.AgentTypeID || p.InitialPrompt != want.InitialPrompt {
						t.Errorf("pod %d = %+v, want %+v", i, p, want)
					}
					if tm := wantTime(t, "created_at", p.CreatedAt); !tm.Equal(want.CreatedAt) {
						t.Errorf("pod %d created_at = %v, want %v", i, tm, want.CreatedAt)
					}
				}
			})

			t.Run("Pages", func(t *testing.T) {
				var all []string
				for offset := 0; offset < 7; offset += 3 {
					got := a.pods(t, id, fmt.Sprintf("?limit=3&offset=%d", offset))
					if got.Total != 7 || got.Limit != 3 || got.Offset != offset {
						t.Errorf("offset %d: total, limit, offset = %d, %d, %d", offset, got.Total, got.Limit, got.Offset)
					}
					all = append(all, gotKeys(got)...)
				}
				if w := keys(created); !slices.Equal(all, w) {
					t.Errorf("pages = %q, want %q", all, w)
				}
				got := a.pods(t, id, "?offset=7")
				if len(got.Pods) != 0 || got.Total != 7 {
					t.Errorf("past the end = %+v, want no pods and total 7", got)
				}
				if got := a.pods(t, id, "?limit=100"); len(got.Pods) != 7 || got.Limit != 100 {
					t.Errorf("limit 100: %d pods, limit %d", len(got.Pods), got.Limit)
				}
			})

			t.Run("Status", func(t *testing.T) {
				for _, s := range pods.Statuses {
					var want []*pods.Pod
					for _, p := range created {
						if p.Status == s {
							want = append(want, p)
						}
					}
					got := a.pods(t, id, "?status="+string(s))
					if g, w := gotKeys(got), keys(want); !slices.Equal(g, w) || got.Total != len(want) {
						t.Errorf("status %s: keys %q total %d, want %q total %d", s, g, got.Total, w, len(want))
					}
				}
				got := a.pods(t, id, "?status=running&limit=2&offset=1")
				if len(got.Pods) != 2 || got.Total != 3 || got.Pods[0].Key != created[4].Key || got.Pods[1].Key != created[6].Key {
					t.Errorf("second page of running pods = %+v", got)
				}
			})
		})
	}
}
