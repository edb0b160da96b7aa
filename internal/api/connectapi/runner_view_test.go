package connectapi_test

import (
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/internal/testutil"
)

// TestRunnerView_ChangesReachEveryReplica: GetRunner and ListRunners read
// runners from each replica's view in memory. A change made through one
// replica shows there at once, and on another replica (PostgreSQL: a second
// control plane on the same database, keeping a view of its own) as soon as
// the database's notice arrives. Every replica has read the runners before
// the change; an entry is trusted for a minute and the poll gives up after
// 20 s, so the test fails if a replica missed the change.
func TestRunnerView_ChangesReachEveryReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, ts *testutil.TestServer) {
		replicas := []*testutil.TestServer{ts}
		if ts.DatabaseURL() != "" {
			// Another address of the same database, so that the second
			// replica shares no view with the first in this process.
			replicas = append(replicas, testutil.StartServerWith(t, testutil.Postgres,
				testutil.Options{DatabaseURL: ts.DatabaseURL() + "&application_name=replica-b"}))
		}
		var clients []*client
		for i, r := range replicas {
			deadline := time.Now().Add(30 * time.Second)
			for !r.Server.RunnerViewLive() {
				if time.Now().After(deadline) {
					t.Fatalf("replica %d does not read runners from its view", i)
				}
				time.Sleep(20 * time.Millisecond)
			}
			clients = append(clients, newClient(t, r.URL, protocols[1], bearer(testutil.AdminToken)))
		}
		a := clients[0]
		keep, doomed := mustCreateLinuxRunner(t, a), mustCreateLinuxRunner(t, a)
		var added *gitpodv1.Runner
		renamed := name("renamed")
		for _, tc := range []struct {
			name   string
			change func(t *testing.T)
			// shows reports whether replica c shows the change.
			shows func(c *client) (bool, string)
		}{
			{"Renamed", func(t *testing.T) {
				_, err := a.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: keep.GetRunnerId(), Name: &renamed}))
				mustOK(t, err, "rename")
			}, func(c *client) (bool, string) {
				res, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: keep.GetRunnerId()}))
				if err != nil {
					return false, err.Error()
				}
				listed := listed(t, c, keep.GetRunnerId())
				return res.Msg.GetRunner().GetName() == renamed && listed.GetName() == renamed,
					fmt.Sprintf("get %q, list %q", res.Msg.GetRunner().GetName(), listed.GetName())
			}},
			{"Drained", func(t *testing.T) {
				_, err := a.Runners.UpdateRunner(ctx, connect.NewRequest(&gitpodv1.UpdateRunnerRequest{RunnerId: keep.GetRunnerId(),
					Spec: &gitpodv1.UpdateRunnerRequest_Spec{DesiredPhase: gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE.Enum()}}))
				mustOK(t, err, "drain")
			}, func(c *client) (bool, string) {
				got := listed(t, c, keep.GetRunnerId()).GetSpec().GetDesiredPhase()
				return got == gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE, got.String()
			}},
			{"Created", func(t *testing.T) {
				added = mustCreateLinuxRunner(t, a)
			}, func(c *client) (bool, string) {
				got := listed(t, c, added.GetRunnerId())
				return got != nil, "not listed"
			}},
			{"Deleted", func(t *testing.T) {
				_, err := a.Runners.DeleteRunner(ctx, connect.NewRequest(&gitpodv1.DeleteRunnerRequest{RunnerId: doomed.GetRunnerId(), Force: true}))
				mustOK(t, err, "delete")
			}, func(c *client) (bool, string) {
				res, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: doomed.GetRunnerId()}))
				if err != nil {
					return false, err.Error()
				}
				phase := res.Msg.GetRunner().GetStatus().GetPhase()
				return phase == gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED && listed(t, c, doomed.GetRunnerId()) == nil,
					fmt.Sprintf("phase %s, listed %v", phase, listed(t, c, doomed.GetRunnerId()) != nil)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, c := range clients {
					for _, r := range []*gitpodv1.Runner{keep, doomed} {
						_, err := c.Runners.GetRunner(ctx, connect.NewRequest(&gitpodv1.GetRunnerRequest{RunnerId: r.GetRunnerId()}))
						mustOK(t, err, "read the runner before the change")
					}
					listed(t, c, keep.GetRunnerId())
				}
				tc.change(t)
				if ok, got := tc.shows(a); !ok {
					t.Fatalf("the replica that made the change does not show it: %s", got)
				}
				for i, c := range clients[1:] {
					deadline := time.Now().Add(20 * time.Second)
					for {
						ok, got := tc.shows(c)
						if ok {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("replica %d does not show the change: %s", i+1, got)
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
	})
}

// listed returns runner id as the first page of ListRunners shows it, or
// nil.
func listed(t *testing.T, c *client, id string) *gitpodv1.Runner {
	t.Helper()
	res, err := c.Runners.ListRunners(ctx, connect.NewRequest(&gitpodv1.ListRunnersRequest{
		Pagination: &gitpodv1.PaginationRequest{PageSize: 100}}))
	mustOK(t, err, "list runners")
	for _, r := range res.Msg.GetRunners() {
		if r.GetRunnerId() == id {
			return r
		}
	}
	return nil
}
