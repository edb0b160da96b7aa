package sqlstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/testutil"
)

// These tests place pods through pods.Service, which lets a store use a
// placement index (SQLite keeps one per organization between placements),
// and check each decision against what the database holds at that moment,
// across every kind of write the index must notice: its own placements, pod
// updates, and writes it cannot account for (runner reports and renewals,
// pods stored directly, another connection to the same database).

var ctx = context.Background()

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

type backend struct {
	name string
	open func(t *testing.T) (store.Store, func(t *testing.T) store.Store)
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) (store.Store, func(*testing.T) store.Store) {
			path := filepath.Join(t.TempDir(), "runyard.db")
			open := func(t *testing.T) store.Store {
				db, err := sqlite.Open(ctx, path)
				testutil.MustNoErr(t, err, "open sqlite")
				t.Cleanup(func() { db.Close() })
				return db
			}
			return open(t), open
		}},
		{"postgres", func(t *testing.T) (store.Store, func(*testing.T) store.Store) {
			u := testutil.PostgresURL(t)
			open := func(t *testing.T) store.Store {
				db, err := postgres.Open(ctx, u)
				testutil.MustNoErr(t, err, "open postgres")
				t.Cleanup(func() { db.Close() })
				return db
			}
			return open(t), open
		}},
	}
}

// fixture is an organization with runners and a pods service on a store.
type fixture struct {
	st      store.Store
	org     *identity.Organization
	svc     *pods.Service
	caller  context.Context
	runners []*runners.Runner
	now     time.Time
	mu      sync.Mutex
}

func newFixture(t *testing.T, st store.Store, maxPods ...int) *fixture {
	f := &fixture{st: st, now: t0}
	f.org = &identity.Organization{ID: uuid.NewString(), Name: "org-" + uuid.NewString()[:8], CreatedAt: t0}
	testutil.MustNoErr(t, st.CreateOrganization(ctx, f.org), "create organization")
	f.svc = &pods.Service{Store: st, RunnerTimeout: 30 * time.Second, Now: f.clock}
	f.caller = identity.NewContext(ctx, &identity.Caller{OrgID: f.org.ID, Scopes: []identity.Scope{identity.ScopeAdmin},
		Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}})
	for i, m := range maxPods {
		r := &runners.Runner{
			ID: uuid.NewString(), OrgID: f.org.ID, Name: fmt.Sprintf("r%d", i),
			Kind: runners.KindLocal, Provider: runners.ProviderLinuxHost,
			Spec:     runners.Spec{DesiredPhase: runners.PhaseActive},
			Status:   runners.Status{Phase: runners.PhaseActive},
			Creator:  identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
			Report:   runners.Report{MaxPods: m, AgentTypes: []string{"claude-code"}, Labels: []string{"gpu"}},
			LastSeen: t0, CreatedAt: t0, UpdatedAt: t0,
		}
		testutil.MustNoErr(t, st.CreateRunner(ctx, r, nil), "create runner")
		f.runners = append(f.runners, r)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// create places a pod and returns it.
func (f *fixture) create(t *testing.T) *pods.Pod {
	t.Helper()
	p, err := f.svc.Create(f.caller, pods.CreateInput{AgentTypeID: "claude-code", InitialPrompt: "go", Labels: []string{"gpu"}})
	testutil.MustNoErr(t, err, "create pod")
	return p
}

// expect returns the runner the rules choose on what the database holds
// now: online, not draining, below its maximum; fewest pods, then lowest
// seq; "" when none. All runners of a fixture have the agent type and label.
func (f *fixture) expect(t *testing.T) string {
	t.Helper()
	// Counted from the pods, not with CountActivePods, whose counts are
	// what the placement under test uses.
	all, _, err := f.st.FindPods(ctx, pods.Filter{OrgID: f.org.ID})
	testutil.MustNoErr(t, err, "find pods")
	counts := map[string]int{}
	for _, p := range all {
		if p.Active() {
			counts[p.RunnerID]++
		}
	}
	var best *runners.Runner
	for _, r0 := range f.runners {
		r, err := f.st.FindRunnerByID(ctx, f.org.ID, r0.ID)
		if err != nil {
			continue // deleted
		}
		if !r.Available(f.clock(), 30*time.Second, counts[r.ID]) {
			continue
		}
		if best == nil || counts[r.ID] < counts[best.ID] || (counts[r.ID] == counts[best.ID] && r.Seq < best.Seq) {
			best = r
		}
	}
	if best == nil {
		return ""
	}
	return best.ID
}

// place creates a pod and wants it where expect says.
func (f *fixture) place(t *testing.T, what string) *pods.Pod {
	t.Helper()
	want := f.expect(t)
	p := f.create(t)
	if p.RunnerID != want {
		t.Fatalf("%s: pod placed on %q, want %q (reason %q)", what, f.name(p.RunnerID), f.name(want), p.Reason)
	}
	return p
}

func (f *fixture) name(id string) string {
	for _, r := range f.runners {
		if r.ID == id {
			return r.Name
		}
	}
	return id
}

func (f *fixture) update(t *testing.T, r *runners.Runner, fn func(*runners.Runner)) {
	t.Helper()
	_, err := f.st.UpdateRunner(ctx, f.org.ID, r.ID, func(r *runners.Runner) error { fn(r); return nil })
	testutil.MustNoErr(t, err, "update runner")
}

func (f *fixture) finish(t *testing.T, p *pods.Pod) {
	t.Helper()
	_, err := f.st.UpdatePod(ctx, f.org.ID, p.Key, func(p *pods.Pod) error {
		p.Status = pods.StatusTerminated
		return nil
	})
	testutil.MustNoErr(t, err, "finish pod")
}

func TestPlacementIndex_FollowsTheDatabase(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st, open := b.open(t)
			f := newFixture(t, st, 3, 3, 3)
			a, bb, c := f.runners[0], f.runners[1], f.runners[2]
			var placed []*pods.Pod
			for i := range 4 {
				placed = append(placed, f.place(t, fmt.Sprintf("pod %d", i)))
			}
			// Pod updates the index records: a finished pod frees its place.
			f.finish(t, placed[1])
			placed = append(placed, f.place(t, "after a pod finished"))

			// Writes it cannot account for.
			f.update(t, a, func(r *runners.Runner) { r.Report.Draining = true })
			f.place(t, "after a runner started draining")
			f.update(t, a, func(r *runners.Runner) { r.Report.Draining = false; r.Report.MaxPods = 9 })
			f.place(t, "after a runner's maximum grew")
			held := &pods.Pod{Key: "pod-held-" + uuid.NewString()[:8], OrgID: f.org.ID, RunnerID: c.ID, Status: pods.StatusRunning,
				DesiredStatus: pods.StatusRunning, AgentTypeID: "claude-code", InitialPrompt: "x", Labels: []string{},
				Env: map[string]string{}, CreatedAt: t0}
			testutil.MustNoErr(t, st.CreatePod(ctx, held), "store a pod directly")
			f.place(t, "after a pod was stored directly")

			// Time alone: a runner renewed, the others went silent.
			f.advance(25 * time.Second)
			_, err := st.RenewRunners(ctx, []runners.Renewal{{OrgID: f.org.ID, RunnerID: bb.ID, At: f.clock()}})
			testutil.MustNoErr(t, err, "renew")
			f.advance(10 * time.Second)
			f.place(t, "after all but one runner went silent")
			f.advance(time.Minute)
			if p := f.place(t, "with every runner silent"); p.Reason != "no runner online" {
				t.Errorf("reason = %q, want no runner online", p.Reason)
			}

			// Another connection to the same database.
			other := open(t)
			_, err = other.RenewRunners(ctx, []runners.Renewal{{OrgID: f.org.ID, RunnerID: c.ID, At: f.clock()}})
			testutil.MustNoErr(t, err, "renew through another connection")
			f.place(t, "after another connection revived a runner")
			_, err = other.UpdatePod(ctx, f.org.ID, held.Key, func(p *pods.Pod) error { p.Status = pods.StatusFailed; return nil })
			testutil.MustNoErr(t, err, "finish a pod through another connection")
			f.place(t, "after another connection finished a pod")

			// A requested runner that is not a candidate.
			f.update(t, a, func(r *runners.Runner) { r.Status.Phase = runners.PhaseInactive })
			seq := int64(0)
			if r, err := st.FindRunnerByID(ctx, f.org.ID, a.ID); err == nil {
				seq = r.Seq
			}
			_, err = f.svc.Create(f.caller, pods.CreateInput{AgentTypeID: "claude-code", InitialPrompt: "go", RunnerID: &seq})
			if err == nil || !strings.Contains(err.Error(), "it is offline") {
				t.Errorf("pod on an inactive runner: %v, want it is offline", err)
			}
			f.place(t, "after a refused request")
		})
	}
}

// TestPlacementIndex_Concurrent creates and finishes pods from many
// goroutines, and then wants the counts the index holds to be the
// database's: every runner full and no more, and the next pods waiting.
func TestPlacementIndex_Concurrent(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st, _ := b.open(t)
			maxPods := []int{1, 2, 3, 4, 5, 1, 2, 3}
			f := newFixture(t, st, maxPods...)
			capacity := 0
			for _, m := range maxPods {
				capacity += m
			}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for w := range 8 {
				wg.Go(func() {
					for i := range 30 {
						p, err := f.svc.Create(f.caller, pods.CreateInput{AgentTypeID: "claude-code", InitialPrompt: "go"})
						if err != nil {
							errs <- err
							return
						}
						if p.RunnerID != "" && (i+w)%2 == 0 {
							if _, err := f.st.UpdatePod(ctx, f.org.ID, p.Key, func(p *pods.Pod) error {
								p.Status = pods.StatusTerminated
								return nil
							}); err != nil {
								errs <- err
								return
							}
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("concurrent placement: %v", err)
			}
			// Fill up: exactly what is left fits.
			counts, err := st.CountActivePods(ctx, f.org.ID)
			testutil.MustNoErr(t, err, "count")
			held := 0
			for i, r := range f.runners {
				if counts[r.ID] > maxPods[i] {
					t.Fatalf("runner %s holds %d pods, max %d", r.Name, counts[r.ID], maxPods[i])
				}
				held += counts[r.ID]
			}
			for range capacity - held {
				if p := f.place(t, "filling up"); p.RunnerID == "" {
					t.Fatalf("pod left waiting with room left: %s", p.Reason)
				}
			}
			want := fmt.Sprintf("all runners that fit are full (%d of %d pods)", capacity, capacity)
			if p := f.create(t); p.RunnerID != "" || p.Reason != want {
				t.Fatalf("pod beyond capacity: runner %q reason %q, want %q", p.RunnerID, p.Reason, want)
			}
		})
	}
}

// plain hides the placement index and the placement query from a store, so
// that it loads the candidates for every placement.
type plain struct{ store.Store }

func (s plain) CreatePlacedPod(ctx context.Context, p *pods.Pod, f pods.CandidateFilter, place pods.PlaceFunc) error {
	f.Indexed, f.Counted = nil, nil
	return s.Store.CreatePlacedPod(ctx, p, f, place)
}

func (s plain) PlacePendingPods(ctx context.Context, f pods.CandidateFilter, place pods.PlaceFunc) ([]*pods.Pod, error) {
	f.Indexed, f.Counted = nil, nil
	return s.Store.PlacePendingPods(ctx, f, place)
}

// TestPlacementIndex_SameAsPlain runs one random history of creates, pod
// updates, pending passes, runner changes, renewals, pods stored directly
// and time on two databases, one placing as the store does by default (the
// SQLite index, or PostgreSQL's placement query on its counted columns) and
// one SQLite database loading every candidate for every placement, and
// wants every decision, reason and error alike, and all pods alike after
// every step.
func TestPlacementIndex_SameAsPlain(t *testing.T) {
	plainSQLite := func(t *testing.T) store.Store {
		db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
		testutil.MustNoErr(t, err, "open sqlite")
		t.Cleanup(func() { db.Close() })
		return plain{db}
	}
	for _, b := range backends() {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("%s/%d", b.name, seed), func(t *testing.T) {
				st, _ := b.open(t)
				samePlacements(t, seed, st, plainSQLite(t))
			})
		}
	}
}

// samePlacements runs the history of seed on st and on ref.
func samePlacements(t *testing.T, seed uint64, st, ref store.Store) {
	rng := rand.New(rand.NewPCG(seed, 11))
	maxPods := make([]int, 12)
	for i := range maxPods {
		maxPods[i] = rng.IntN(4)
	}
	sides := [2]*fixture{newFixture(t, st, maxPods...), newFixture(t, ref, maxPods...)}
	// The plain side places through plain; its fixture writes to
	// the store beneath.
	sides[1].svc.Store, sides[1].st = ref, ref.(plain).Store
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
	// Both sides get the same reports.
	for i := range maxPods {
		at, ls := pick(agents), pick(labels)
		for _, f := range sides {
			f.update(t, f.runners[i], func(r *runners.Runner) { r.Report.AgentTypes, r.Report.Labels = at, ls })
		}
	}
	each := func(fn func(f *fixture) string) {
		t.Helper()
		a, b := fn(sides[0]), fn(sides[1])
		if a != b {
			t.Fatalf("store: %s\nplain: %s", a, b)
		}
	}
	for step := range 300 {
		switch op := rng.IntN(100); {
		case op < 45:
			in := pods.CreateInput{AgentTypeID: agents[rng.IntN(2)], InitialPrompt: "go", Labels: pick(labels)}
			requested, missing := -1, rng.IntN(2) == 0
			if rng.IntN(8) == 0 {
				requested = rng.IntN(len(maxPods))
			}
			each(func(f *fixture) string {
				in := in
				var seq int64
				if requested >= 0 {
					// The databases number runners alike only
					// while alone in them; an error names the
					// number, so it is shown as "SEQ".
					seq = f.runners[requested].Seq
					if missing {
						seq += 1_000_000
					}
					in.RunnerID = &seq
				}
				p, err := f.svc.Create(f.caller, in)
				if err != nil {
					return strings.ReplaceAll(fmt.Sprintf("step %d: create: %v", step, err), fmt.Sprint(seq), "SEQ")
				}
				return fmt.Sprintf("step %d: create: on %q reason %q", step, f.name(p.RunnerID), p.Reason)
			})
		case op < 60:
			// The i-th active pod, the same on both sides while
			// they agree, ends or starts.
			status := pods.StatusTerminated
			if rng.IntN(3) == 0 {
				status = pods.StatusRunning
			}
			i := rng.IntN(1 << 20)
			each(func(f *fixture) string {
				all, _, err := f.st.FindPods(ctx, pods.Filter{OrgID: f.org.ID})
				testutil.MustNoErr(t, err, "find pods")
				var active []*pods.Pod
				for _, p := range all {
					if p.Active() {
						active = append(active, p)
					}
				}
				if len(active) == 0 {
					return "no active pod"
				}
				p := active[i%len(active)]
				_, err = f.st.UpdatePod(ctx, f.org.ID, p.Key, func(p *pods.Pod) error { p.Status = status; return nil })
				testutil.MustNoErr(t, err, "update pod")
				return ""
			})
		case op < 68:
			each(func(f *fixture) string {
				n, err := f.svc.PlacePending(ctx, f.org.ID)
				return fmt.Sprintf("step %d: place pending: %d, %v", step, n, err)
			})
		case op < 76:
			i, what := rng.IntN(len(maxPods)), rng.IntN(5)
			m, ph := rng.IntN(4), []runners.Phase{runners.PhaseActive, runners.PhaseInactive}[rng.IntN(2)]
			each(func(f *fixture) string {
				f.update(t, f.runners[i], func(r *runners.Runner) {
					switch what {
					case 0:
						r.Report.Draining = !r.Report.Draining
					case 1:
						r.Report.MaxPods = m
					case 2:
						r.Status.Phase = ph
					case 3:
						r.Spec.DesiredPhase = ph
					case 4:
						// The pod manager falls ill or recovers.
						sick := len(r.Report.Components) == 0 || r.Report.Components[0].Healthy
						r.Report.Components = []runners.Component{{Name: runners.ComponentAgent, Healthy: !sick, Message: "disk full"}}
					}
				})
				return ""
			})
		case op < 86:
			var ids []int
			for i := range maxPods {
				if rng.IntN(2) == 0 {
					ids = append(ids, i)
				}
			}
			each(func(f *fixture) string {
				var rs []runners.Renewal
				for _, i := range ids {
					rs = append(rs, runners.Renewal{OrgID: f.org.ID, RunnerID: f.runners[i].ID, At: f.clock()})
				}
				_, err := f.st.RenewRunners(ctx, rs)
				testutil.MustNoErr(t, err, "renew")
				return ""
			})
		case op < 95:
			d := time.Duration(rng.IntN(15_000)) * time.Millisecond
			each(func(f *fixture) string { f.advance(d); return "" })
		default:
			i, key := rng.IntN(len(maxPods)), "pod-held-"+uuid.NewString()[:8]
			each(func(f *fixture) string {
				held := &pods.Pod{Key: key, OrgID: f.org.ID, RunnerID: f.runners[i].ID, Status: pods.StatusRunning,
					DesiredStatus: pods.StatusRunning, AgentTypeID: "claude-code", InitialPrompt: "x", Labels: []string{},
					Env: map[string]string{}, CreatedAt: t0}
				testutil.MustNoErr(t, f.st.CreatePod(ctx, held), "store a pod directly")
				return ""
			})
		}
		each(func(f *fixture) string {
			all, _, err := f.st.FindPods(ctx, pods.Filter{OrgID: f.org.ID})
			testutil.MustNoErr(t, err, "find pods")
			var b strings.Builder
			fmt.Fprintf(&b, "after step %d:", step)
			for _, p := range all {
				fmt.Fprintf(&b, "\n%s %s on %q: %q", p.AgentTypeID, p.Status, f.name(p.RunnerID), p.Reason)
			}
			return b.String()
		})
	}
	// runyard_pod_placements_total: the service counted every pod that
	// went on a runner (no pod here is placed twice), on either path and
	// whichever database, and none that stayed pending.
	for _, f := range sides {
		all, _, err := f.st.FindPods(ctx, pods.Filter{OrgID: f.org.ID})
		testutil.MustNoErr(t, err, "find pods")
		placed := 0
		for _, p := range all {
			if p.RunnerID != "" && !strings.HasPrefix(p.Key, "pod-held-") {
				placed++
			}
		}
		if got := f.svc.Placements(); got != int64(placed) || placed == 0 {
			t.Errorf("%T: Placements() = %d, want the %d pods on a runner (not none)", f.st, got, placed)
		}
	}
}

// BenchmarkPlacement creates pods through pods.Service, as the REST API
// does but without HTTP and without pushing desired states, on 10,000
// runners shaped like bench/pods's (seven in ten fit the pods, with
// max_pods 2..8; the others lack the agent type or the label, or drain),
// from 32 goroutines, and reports pods placed per second. "sqlite" places
// with the index; "postgres" places the pods that come together in one
// statement (placebatch.go), and "postgres-onebyone", its baseline, each in
// its own transaction under the organization's lock, with the placement
// query; "sqlite-plain" and "postgres-plain" load the candidates for every
// pod. Each runs on one fresh database (SQLite's in /dev/shm); with
// more pods than the 34,979 places, the rest wait.
//
//	go test -run '^$' -bench Placement -benchtime 20000x ./internal/store/sqlstore/
func BenchmarkPlacement(b *testing.B) {
	const n = 10_000
	open := map[string]func(b *testing.B) store.Store{
		"sqlite": func(b *testing.B) store.Store {
			// In memory, as bench/pods keeps it: on this machine's disk
			// the fsync of each commit would be most of what is measured.
			dir := b.TempDir()
			if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
				dir, err = os.MkdirTemp("/dev/shm", "runyard-bench-")
				testutil.MustNoErr(b, err, "temp dir")
				b.Cleanup(func() { os.RemoveAll(dir) })
			}
			db, err := sqlite.Open(ctx, filepath.Join(dir, "runyard.db"))
			testutil.MustNoErr(b, err, "open sqlite")
			b.Cleanup(func() { db.Close() })
			return db
		},
		"postgres": func(b *testing.B) store.Store {
			db, err := postgres.Open(ctx, testutil.PostgresURL(b))
			testutil.MustNoErr(b, err, "open postgres")
			b.Cleanup(func() { db.Close() })
			return db
		},
	}
	for _, name := range []string{"sqlite", "sqlite-plain", "postgres", "postgres-onebyone", "postgres-plain"} {
		b.Run(name, func(b *testing.B) {
			base, variant, _ := strings.Cut(name, "-")
			st := open[base](b)
			if variant == "onebyone" {
				// The baseline: one transaction per pod under the
				// organization's lock, as before batches.
				sqlstore.PlaceOneByOne(st.(*sqlstore.DB))
			}
			org := &identity.Organization{ID: uuid.NewString(), Name: "bench", CreatedAt: time.Now()}
			testutil.MustNoErr(b, st.CreateOrganization(ctx, org), "create organization")
			now := time.Now().UTC()
			for i := range n {
				rep := runners.Report{MaxPods: 2 + (i/10)%7, AgentTypes: []string{"codex", "claude-code"},
					Labels: []string{"zone-a", fmt.Sprintf("rack-%02d", i%16)}}
				switch i % 10 {
				case 0:
					rep.AgentTypes = []string{"claude-code"}
				case 1:
					rep.Labels = []string{"zone-b"}
				case 2:
					rep.Draining = true
				}
				r := &runners.Runner{
					ID: uuid.NewString(), OrgID: org.ID, Name: fmt.Sprintf("sim-%05d", i),
					Kind: runners.KindLocal, Provider: runners.ProviderLinuxHost,
					Spec: runners.Spec{DesiredPhase: runners.PhaseActive}, Status: runners.Status{Phase: runners.PhaseActive},
					Creator: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount},
					Report:  rep, LastSeen: now, CreatedAt: now, UpdatedAt: now,
				}
				testutil.MustNoErr(b, st.CreateRunner(ctx, r, nil), "create runner")
			}
			var ps pods.Store = st
			if variant == "plain" {
				ps = plain{st}
			}
			// An hour's timeout: the runners are not renewed.
			svc := &pods.Service{Store: ps, RunnerTimeout: time.Hour}
			caller := identity.NewContext(ctx, &identity.Caller{OrgID: org.ID, Scopes: []identity.Scope{identity.ScopeAdmin},
				Subject: identity.Subject{ID: uuid.NewString(), Principal: identity.PrincipalServiceAccount}})
			in := pods.CreateInput{AgentTypeID: "codex", InitialPrompt: "benchmark the placement", Labels: []string{"zone-a"}}
			var placed atomic.Int64
			var pgCPU func() time.Duration
			if base == "postgres" {
				var dir string
				if sqlstore.QueryRow(st.(*sqlstore.DB), ctx, `SHOW data_directory`).Scan(&dir) == nil {
					pgCPU = serverCPU(dir)
				}
			}
			var pg0 time.Duration
			if pgCPU != nil {
				pg0 = pgCPU()
			}
			cpu0 := processCPU()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := svc.Create(caller, in)
					if err != nil {
						b.Error(err)
						return
					}
					if p.RunnerID != "" {
						placed.Add(1)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pods/s")
			b.ReportMetric(float64(placed.Load()), "placed")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-us/pod")
			if pgCPU != nil {
				b.ReportMetric(float64((pgCPU()-pg0).Microseconds())/float64(b.N), "pgcpu-us/pod")
			}
		})
	}
}
