package sqlstore_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/testutil"
)

// TestPlaceBatch_SameAsOneByOne places pods that PostgreSQL stores in
// batches (placebatch.go: one statement places the pods of each demand
// together) and the same pods one by one on a SQLite database loading
// every candidate, in the order the batch places them (by demand, in the
// order each demand first came, then in the order the pods came), and wants
// every pod on the same runner or waiting for the same reason: runners with
// random maxima, agent types, labels, draining, offline, and pods held
// already.
func TestPlaceBatch_SameAsOneByOne(t *testing.T) {
	u := testutil.PostgresURL(t)
	for seed := range uint64(8) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			pg, err := postgres.Open(ctx, u)
			testutil.MustNoErr(t, err, "open postgres")
			t.Cleanup(func() { pg.Close() })
			lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
			testutil.MustNoErr(t, err, "open sqlite")
			t.Cleanup(func() { lite.Close() })

			rng := rand.New(rand.NewPCG(seed, 17))
			maxPods := make([]int, 10)
			for i := range maxPods {
				maxPods[i] = rng.IntN(6)
			}
			sides := [2]*fixture{newFixture(t, pg, maxPods...), newFixture(t, plain{lite}, maxPods...)}
			sides[1].st = lite
			agents, labels := []string{"claude-code", "codex"}, []string{"gpu", "arm"}
			pick := func(all []string) []string {
				out := []string{}
				for _, s := range all {
					if rng.IntN(2) == 0 {
						out = append(out, s)
					}
				}
				return out
			}
			for i := range maxPods {
				at, ls, drain := pick(agents), pick(labels), rng.IntN(6) == 0
				seen := t0
				if rng.IntN(6) == 0 {
					seen = t0.Add(-time.Minute) // offline
				}
				held := rng.IntN(3)
				for _, f := range sides {
					f.update(t, f.runners[i], func(r *runners.Runner) {
						r.Report.AgentTypes, r.Report.Labels, r.Report.Draining = at, ls, drain
					})
					_, err := f.st.RenewRunners(ctx, []runners.Renewal{{OrgID: f.org.ID, RunnerID: f.runners[i].ID, At: seen}})
					testutil.MustNoErr(t, err, "renew")
					for range held {
						p := &pods.Pod{Key: "held-" + uuid.NewString()[:8], OrgID: f.org.ID, RunnerID: f.runners[i].ID,
							Status: pods.StatusRunning, DesiredStatus: pods.StatusRunning, AgentTypeID: "claude-code",
							InitialPrompt: "x", Labels: []string{}, Env: map[string]string{}, CreatedAt: t0}
						testutil.MustNoErr(t, f.st.CreatePod(ctx, p), "store a pod directly")
					}
				}
			}

			// The batch: pods of random demands, queued in order.
			type demand struct {
				agent  string
				labels []string
			}
			in := make([]demand, 40)
			for i := range in {
				in[i] = demand{agents[rng.IntN(2)], pick(labels)}
			}
			queued, release := sqlstore.HoldPlacements(pg, sides[0].org.ID)
			got := make([]*pods.Pod, len(in))
			errs := make(chan error, len(in))
			for i, d := range in {
				go func() {
					p, err := sides[0].svc.Create(sides[0].caller, pods.CreateInput{AgentTypeID: d.agent, InitialPrompt: "go", Labels: d.labels})
					got[i] = p
					errs <- err
				}()
				waitQueued(t, queued, i+1)
			}
			release()
			for range in {
				testutil.MustNoErr(t, <-errs, "create in a batch")
			}

			// One by one, in the batch's order.
			key := func(d demand) string { return d.agent + strings.Join(d.labels, ",") }
			first := map[string]int{}
			for i, d := range in {
				if _, ok := first[key(d)]; !ok {
					first[key(d)] = i
				}
			}
			order := make([]int, len(in))
			for i := range order {
				order[i] = i
			}
			slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(first[key(in[a])], first[key(in[b])]) })
			placed := 0
			for _, i := range order {
				d := in[i]
				want, err := sides[1].svc.Create(sides[1].caller, pods.CreateInput{AgentTypeID: d.agent, InitialPrompt: "go", Labels: d.labels})
				testutil.MustNoErr(t, err, "create one by one")
				g := got[i]
				if sides[0].name(g.RunnerID) != sides[1].name(want.RunnerID) || g.Reason != want.Reason {
					t.Fatalf("pod %d (%v): batch put it on %q (reason %q), one by one on %q (reason %q)",
						i, d, sides[0].name(g.RunnerID), g.Reason, sides[1].name(want.RunnerID), want.Reason)
				}
				if g.RunnerID != "" {
					placed++
				}
			}
			t.Logf("%d of %d pods placed", placed, len(in))
		})
	}
}

// waitQueued waits, for a bounded time, until n pods are queued.
func waitQueued(t *testing.T, queued func() int, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); queued() != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d pods queued, want %d", queued(), n)
		}
	}
}

// TestPlaceBatch_Audit (PostgreSQL): a pod created through an audited call
// records one entry, committed with the pod, whether its batch placed it or
// it was placed alone to wait.
func TestPlaceBatch_Audit(t *testing.T) {
	for _, b := range backends() {
		if b.name != "postgres" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			f := newFixture(t, st, 1)
			for i, want := range []string{"placed", "waiting"} {
				ctx, d := audit.Begin(f.caller, "rest", "POST /pods", audit.TypePod, "127.0.0.1", "test")
				p, err := f.svc.Create(ctx, pods.CreateInput{AgentTypeID: "claude-code", InitialPrompt: "go", Labels: []string{"gpu"}})
				testutil.MustNoErr(t, err, "create")
				if got := map[bool]string{true: "placed", false: "waiting"}[p.RunnerID != ""]; got != want {
					t.Fatalf("pod %d %s, want %s (%s)", i, got, want, p.Reason)
				}
				if _, again := d.Finish(ctx, audit.OutcomeOK, time.Now()); again {
					t.Fatalf("%s pod: the call's entry was not written with the pod", want)
				}
				es, err := st.FindAudit(ctx, audit.Filter{OrgID: f.org.ID, ObjectIDs: []string{p.Key}})
				testutil.MustNoErr(t, err, "find audit")
				if len(es) != 1 || es[0].Outcome != audit.OutcomeOK || es[0].ObjectType != audit.TypePod || es[0].Method != "POST /pods" {
					t.Fatalf("%s pod: audit entries %+v", want, es)
				}
			}
		})
	}
}
