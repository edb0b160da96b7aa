package fleet_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	podmgr "github.com/runyard/runyard/internal/runner/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
)

// These tests drive fleet.Serve with in-memory streams (the Stream seam) on
// a real SQLite store, so each message is seen as the runner would see it.

// wait bounds every wait for a message; it turns a hang into a failure and
// times nothing.
const wait = 30 * time.Second

var discard = slog.New(slog.DiscardHandler)

// countingStore counts the store writes renewals cause and can make them
// fail.
type countingStore struct {
	runners.Store
	calls atomic.Int64
	fail  atomic.Bool

	mu      sync.Mutex
	batches [][]runners.Renewal
}

func (s *countingStore) RenewRunners(ctx context.Context, batch []runners.Renewal) ([]runners.Renewal, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.batches = append(s.batches, slices.Clone(batch))
	s.mu.Unlock()
	if s.fail.Load() {
		return nil, errors.New("injected failure")
	}
	return s.Store.RenewRunners(ctx, batch)
}

func (s *countingStore) lastBatch() []runners.Renewal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[len(s.batches)-1]
}

type env struct {
	db    *sqlstore.DB
	ids   *identity.Service
	store *countingStore
	svc   *runners.Service
	admin context.Context
}

func setup(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "runyard.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ids := identity.NewService(db)
	const admin = "admin-value-0123456789"
	if _, err := ids.Bootstrap(ctx, admin); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	c, err := ids.Authenticate(ctx, admin)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	cs := &countingStore{Store: db}
	return &env{db: db, ids: ids, store: cs, svc: runners.NewService(cs), admin: identity.NewContext(ctx, c)}
}

// newRunner creates a runner and returns it with the context of its daemon:
// a caller authenticated with the runner's access token.
func (e *env) newRunner(t *testing.T, name string) (*runners.Runner, context.Context) {
	t.Helper()
	r, exchange, err := e.svc.Create(e.admin, runners.CreateInput{Name: name, Provider: runners.ProviderLinuxHost})
	if err != nil {
		t.Fatalf("create runner: %v", err)
	}
	access, err := e.ids.Exchange(context.Background(), exchange)
	if err != nil {
		t.Fatalf("exchange token: %v", err)
	}
	c, err := e.ids.Authenticate(context.Background(), access)
	if err != nil {
		t.Fatalf("authenticate runner: %v", err)
	}
	return r, identity.NewContext(context.Background(), c)
}

// stream is one runner's end of a stream: what the fleet sends arrives on
// out; closing in is the runner closing the stream.
type stream struct {
	in   chan *runnerv1.ConnectRequest
	out  chan *runnerv1.ConnectResponse
	gone chan struct{} // closed when the test ends
	// closed is closed by CloseReceive, as closing a request body ends
	// its reads.
	closeOnce sync.Once
	closed    chan struct{}
}

func (s *stream) Receive() (*runnerv1.ConnectRequest, error) {
	select {
	case <-s.closed:
		return nil, errors.New("receive: closed")
	default:
	}
	select {
	case m, ok := <-s.in:
		if !ok {
			return nil, io.EOF
		}
		return m, nil
	case <-s.gone:
		return nil, io.EOF
	case <-s.closed:
		return nil, errors.New("receive: closed")
	}
}

func (s *stream) CloseReceive() { s.closeOnce.Do(func() { close(s.closed) }) }

func (s *stream) Send(m *runnerv1.ConnectResponse) error {
	select {
	case s.out <- m:
		return nil
	case <-s.gone:
		return io.EOF
	}
}

// conn is one session of a runner with the fleet.
type conn struct {
	s      *stream
	closed bool
	served chan error // Serve's result
}

// connect opens a session: it sends st as the first message, as a daemon
// does.
func connect(t *testing.T, f *fleet.Fleet, runnerCtx context.Context, st *runnerv1.Status) *conn {
	t.Helper()
	s := &stream{in: make(chan *runnerv1.ConnectRequest, 64), out: make(chan *runnerv1.ConnectResponse, 64), gone: make(chan struct{}), closed: make(chan struct{})}
	c := &conn{s: s, served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(runnerCtx)
	go func() { c.served <- f.Serve(ctx, s) }()
	t.Cleanup(func() {
		cancel()
		close(s.gone)
		<-c.served
	})
	c.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: st}})
	return c
}

func (c *conn) send(t *testing.T, m *runnerv1.ConnectRequest) {
	t.Helper()
	select {
	case c.s.in <- m:
	case <-time.After(wait):
		t.Fatal("the fleet does not read the stream")
	}
}

func (c *conn) recv(t *testing.T) *runnerv1.ConnectResponse {
	t.Helper()
	select {
	case m := <-c.s.out:
		return m
	case err := <-c.served:
		t.Fatalf("the session ended: %v", err)
	case <-time.After(wait):
		t.Fatal("no message from the fleet")
	}
	return nil
}

// handshake reads the Welcome and the first desired state.
func (c *conn) handshake(t *testing.T) (*runnerv1.Welcome, *runnerv1.DesiredState) {
	t.Helper()
	w := c.recv(t).GetWelcome()
	if w == nil {
		t.Fatal("the first message is not a Welcome")
	}
	ds := c.recv(t).GetDesired()
	if ds == nil {
		t.Fatal("the second message is not the desired state")
	}
	return w, ds
}

// renew sends a renewal and waits for its acknowledgement.
func (c *conn) renew(t *testing.T) {
	t.Helper()
	sent := timestamppb.Now()
	c.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Renewal{Renewal: &runnerv1.Renewal{SentAt: sent}}})
	ack := c.recv(t).GetRenewalAck()
	if ack == nil || !ack.GetSentAt().AsTime().Equal(sent.AsTime()) {
		t.Fatalf("answer to a renewal: %v", ack)
	}
}

// close ends the session as a daemon that goes away does.
func (c *conn) close(t *testing.T) {
	t.Helper()
	close(c.s.in)
	select {
	case err := <-c.served:
		c.served <- err // for the cleanup
		if err != nil {
			t.Fatalf("session ended with %v", err)
		}
	case <-time.After(wait):
		t.Fatal("the session did not end")
	}
}

// flushNow makes the fleet write what it holds, once: Run flushes when its
// context ends, and a context that already ended leaves it nothing else to
// do (its ticker has not fired yet).
func flushNow(f *fleet.Fleet) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.Run(ctx)
}

func lastSeen(t *testing.T, e *env, id string) time.Time {
	t.Helper()
	r, err := e.svc.Get(e.admin, id)
	if err != nil {
		t.Fatalf("get runner: %v", err)
	}
	return r.LastSeen
}

// TestRenewals_Batched checks that renewals cost no store write each: the
// fleet acknowledges them at once, keeps the latest per runner in memory,
// and writes them in one batch per flush; a failed write loses none.
func TestRenewals_Batched(t *testing.T) {
	e := setup(t)
	f := fleet.New(e.svc, 30*time.Second, discard)
	f.SetEpochs(e.db)
	a, actx := e.newRunner(t, "batch-a")
	b, bctx := e.newRunner(t, "batch-b")
	ca := connect(t, f, actx, &runnerv1.Status{Version: "test"})
	ca.handshake(t)
	cb := connect(t, f, bctx, &runnerv1.Status{Version: "test"})
	cb.handshake(t)
	seenA, seenB := lastSeen(t, e, a.ID), lastSeen(t, e, b.ID)

	const n = 25
	for range n {
		ca.renew(t)
		cb.renew(t)
	}
	if got := f.Renewals(); got != 2*n {
		t.Fatalf("Renewals() = %d, want %d", got, 2*n)
	}
	if got := e.store.calls.Load(); got != 0 {
		t.Fatalf("%d store writes for %d acknowledged renewals before any flush, want 0", got, 2*n)
	}
	if !lastSeen(t, e, a.ID).Equal(seenA) {
		t.Fatal("a renewal reached the store before the flush")
	}

	flushNow(f)
	if got := e.store.calls.Load(); got != 1 {
		t.Fatalf("%d store writes for %d renewals of 2 runners, want 1 batch", got, 2*n)
	}
	batch := e.store.lastBatch()
	ids := []string{batch[0].RunnerID}
	if len(batch) == 2 {
		ids = append(ids, batch[1].RunnerID)
	}
	slices.Sort(ids)
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("the batch holds %v, want one renewal of each runner %v", ids, want)
	}
	if !lastSeen(t, e, a.ID).After(seenA) || !lastSeen(t, e, b.ID).After(seenB) {
		t.Fatal("the flush did not move the runners' last-seen time")
	}

	// Nothing new: a flush writes nothing.
	flushNow(f)
	if got := e.store.calls.Load(); got != 1 {
		t.Fatalf("a flush with no renewal wrote to the store (%d writes)", got)
	}

	// A failed write keeps the renewals for the next flush.
	seenA = lastSeen(t, e, a.ID)
	ca.renew(t)
	e.store.fail.Store(true)
	flushNow(f)
	e.store.fail.Store(false)
	if lastSeen(t, e, a.ID) != seenA {
		t.Fatal("a failed write changed the store")
	}
	flushNow(f)
	if got := e.store.calls.Load(); got != 3 {
		t.Fatalf("%d store writes, want 3 (one failed, one retried)", got)
	}
	if batch := e.store.lastBatch(); len(batch) != 1 || batch[0].RunnerID != a.ID {
		t.Fatalf("retried batch = %+v, want runner A's renewal", batch)
	}
	if !lastSeen(t, e, a.ID).After(seenA) {
		t.Fatal("the renewal of the failed write was lost")
	}
}

// TestWelcome_RenewInterval checks that the Welcome tells the runner to
// renew every third of the timeout, so that two lost renewals do not yet
// make it INACTIVE.
func TestWelcome_RenewInterval(t *testing.T) {
	e := setup(t)
	r, rctx := e.newRunner(t, "welcome")
	for _, tc := range []struct {
		timeout, want time.Duration
	}{
		{3 * time.Second, time.Second},
		{90 * time.Second, 30 * time.Second},
		{0, fleet.DefaultTimeout / 3}, // the default timeout
		{1500 * time.Millisecond, 500 * time.Millisecond},
	} {
		f := fleet.New(e.svc, tc.timeout, discard)
		f.SetEpochs(e.db)
		c := connect(t, f, rctx, &runnerv1.Status{Version: "test"})
		w, _ := c.handshake(t)
		timeout := tc.timeout
		if timeout == 0 {
			timeout = fleet.DefaultTimeout
		}
		if got := w.GetRenewInterval().AsDuration(); got != tc.want {
			t.Errorf("timeout %s: renew interval %s, want %s", tc.timeout, got, tc.want)
		}
		if got := w.GetTimeout().AsDuration(); got != timeout {
			t.Errorf("timeout %s: Welcome.timeout %s", tc.timeout, got)
		}
		if w.GetRunnerId() != r.ID || w.GetOrganizationId() != r.OrgID {
			t.Errorf("Welcome names runner %s of %s, want %s of %s", w.GetRunnerId(), w.GetOrganizationId(), r.ID, r.OrgID)
		}
		c.close(t)
	}
}

func podKeys(ds *runnerv1.DesiredState) []string {
	var out []string
	for _, p := range ds.GetPods() {
		out = append(out, p.GetKey())
	}
	return out
}

// TestWork_HandedAgainAfterReconnect checks the delivery of work: a pod the
// runner did not acknowledge is in the desired state of its next session
// again, the runner's pod manager starts it once however often it arrives,
// an acknowledged pod that should still run stays in the set, and a pod the
// runner reported finished is not handed again.
func TestWork_HandedAgainAfterReconnect(t *testing.T) {
	e := setup(t)
	f := fleet.New(e.svc, 30*time.Second, discard)
	f.SetEpochs(e.db)
	podSvc := &pods.Service{Store: e.db, RunnerTimeout: f.Timeout(), Changed: f.Changed}
	f.SetPods(podSvc)
	r, rctx := e.newRunner(t, "work")
	status := &runnerv1.Status{Version: "test", MaxPods: 2, AgentTypes: []string{"claude-code"}}

	c1 := connect(t, f, rctx, status)
	w1, ds := c1.handshake(t)
	if len(ds.GetPods()) != 0 {
		t.Fatalf("pods before any was created: %v", podKeys(ds))
	}

	// A stand-in for the agent's binary that records each start.
	bin, starts := t.TempDir(), filepath.Join(t.TempDir(), "starts")
	script := "#!/bin/sh\necho \"$RUNYARD_POD_KEY\" >> " + starts + "\nexec sleep 600\n"
	if err := os.WriteFile(filepath.Join(bin, "claude"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := podSvc.Create(e.admin, pods.CreateInput{
		AgentTypeID: "claude-code", InitialPrompt: "hello",
		Env: map[string]string{"PATH": bin + ":" + os.Getenv("PATH")},
	})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if p.RunnerID != r.ID {
		t.Fatalf("the pod was placed on %q, want the only runner %q (reason %q)", p.RunnerID, r.ID, p.Reason)
	}
	// The placement wakes the session, which sends the new set.
	first := c1.recv(t).GetDesired()
	if !slices.Equal(podKeys(first), []string{p.Key}) {
		t.Fatalf("desired pods after the placement: %v, want [%s]", podKeys(first), p.Key)
	}
	// The runner goes away before it acknowledged the pod.
	c1.close(t)

	c2 := connect(t, f, rctx, status)
	_, again := c2.handshake(t)
	if !slices.Equal(podKeys(again), []string{p.Key}) {
		t.Fatalf("desired pods after the reconnect: %v, want the unacknowledged pod %s again", podKeys(again), p.Key)
	}
	// The pod stays bound to the first stream it was handed to: only the
	// daemon that had that stream may start it (fencing).
	if got, want := first.GetPods()[0].GetStartedEpoch(), w1.GetEpoch(); got != want || want == 0 {
		t.Fatalf("the pod is bound to epoch %d, want the first stream's %d", got, want)
	}
	if got := again.GetPods()[0].GetStartedEpoch(); got != w1.GetEpoch() {
		t.Fatalf("after the reconnect the pod is bound to epoch %d, want still %d", got, w1.GetEpoch())
	}

	// On the runner, the pod manager de-duplicates by key: both deliveries
	// start one process.
	// The manager reports a pod running once its process is spawned, before
	// the script has written its line, so the manager stays open until the
	// line is there (closing it earlier could stop the script first).
	events := startPods(t, func() bool { return len(readStarts(t, starts)) > 0 }, first, again)
	if got := readStarts(t, starts); !slices.Equal(got, []string{p.Key}) {
		t.Fatalf("starts after two deliveries of the pod: %v, want one of %s", got, p.Key)
	}
	if n := events.count(p.Key, podmgr.StatusRunning); n != 1 {
		t.Fatalf("%d running events for the pod, want 1", n)
	}

	// The acknowledgement (its first status) does not take the pod out of
	// the set: it should still run.
	c2.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: &runnerv1.PodStatus{
		Key: p.Key, State: runnerv1.PodState_POD_STATE_RUNNING, StartedAt: timestamppb.Now(),
	}}})
	waitPodStatus(t, e, r, p.Key, pods.StatusRunning)
	c2.close(t)
	c3 := connect(t, f, rctx, status)
	if _, ds := c3.handshake(t); !slices.Equal(podKeys(ds), []string{p.Key}) {
		t.Fatalf("desired pods after the acknowledgement: %v, want the running pod %s", podKeys(ds), p.Key)
	}

	// Once the runner reports it finished, it is not handed again.
	code := int32(0)
	c3.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: &runnerv1.PodStatus{
		Key: p.Key, State: runnerv1.PodState_POD_STATE_TERMINATED, ExitCode: &code, FinishedAt: timestamppb.Now(),
	}}})
	waitPodStatus(t, e, r, p.Key, pods.StatusTerminated)
	c3.close(t)
	c4 := connect(t, f, rctx, status)
	if _, ds := c4.handshake(t); len(ds.GetPods()) != 0 {
		t.Fatalf("desired pods after the pod finished: %v, want none", podKeys(ds))
	}
}

// podEvents collects a pod manager's events.
type podEvents struct {
	mu  sync.Mutex
	evs []podmgr.Event
}

func (p *podEvents) count(key string, st podmgr.Status) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, ev := range p.evs {
		if ev.Key == key && ev.Status == st {
			n++
		}
	}
	return n
}

// startPods hands each desired state to a real pod manager as the daemon
// does (runner.Daemon.apply), waits until its pods run, and closes it, which
// ends them; the events are complete when it returns.
func startPods(t *testing.T, started func() bool, deliveries ...*runnerv1.DesiredState) *podEvents {
	t.Helper()
	m, err := podmgr.New(podmgr.Config{StateDir: t.TempDir(), StopGrace: time.Second, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	events := &podEvents{}
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for ev := range m.Events() {
			events.mu.Lock()
			events.evs = append(events.evs, ev)
			events.mu.Unlock()
		}
	}()
	var keys []string
	for _, ds := range deliveries {
		var specs []podmgr.Spec
		for _, p := range ds.GetPods() {
			specs = append(specs, podmgr.Spec{Key: p.GetKey(), Argv: p.GetArgv(), Env: p.GetEnv(), Workdir: p.GetWorkdir(), Input: p.GetInput()})
			keys = append(keys, p.GetKey())
		}
		if err := m.Ensure(specs); err != nil {
			t.Fatalf("ensure: %v", err)
		}
	}
	deadline := time.Now().Add(wait)
	for _, k := range keys {
		for events.count(k, podmgr.StatusRunning) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("pod %s did not start: %+v", k, m.Pods())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for !started() {
		if time.Now().After(deadline) {
			t.Fatalf("the pods' processes never showed they started: %+v", m.Pods())
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatalf("close the pod manager: %v", err)
	}
	<-collected
	return events
}

func readStarts(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("read starts: %v", err)
	}
	return strings.Fields(string(b))
}

func waitPodStatus(t *testing.T, e *env, r *runners.Runner, key string, want pods.Status) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		ps, _, err := e.db.FindPods(context.Background(), pods.Filter{OrgID: r.OrgID, RunnerID: r.ID})
		if err != nil {
			t.Fatalf("find pods: %v", err)
		}
		for _, p := range ps {
			if p.Key == key && p.Status == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s never reached %s", key, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeDetached_WaitServed: a stream served past its HTTP handler
// (ServeDetached) hands its end to end, and WaitServed waits for it: it
// times out while the stream is served and returns once CloseSessions
// ended it, so that the server's shutdown closes the store after it.
func TestServeDetached_WaitServed(t *testing.T) {
	e := setup(t)
	_, rctx := e.newRunner(t, "detached")
	f := fleet.New(e.svc, 0, discard)
	f.SetEpochs(e.db)
	s := &stream{in: make(chan *runnerv1.ConnectRequest, 64), out: make(chan *runnerv1.ConnectResponse, 64), gone: make(chan struct{}), closed: make(chan struct{})}
	defer close(s.gone)
	ended := make(chan error, 1)
	f.ServeDetached(rctx, s, func(err error) { ended <- err })
	c := &conn{s: s, served: ended}
	c.send(t, &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: &runnerv1.Status{Version: "test"}}})
	c.handshake(t)
	c.renew(t)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if f.WaitServed(short) {
		t.Fatal("WaitServed returned while a stream is served")
	}
	f.CloseSessions()
	long, cancel2 := context.WithTimeout(context.Background(), wait)
	defer cancel2()
	if !f.WaitServed(long) {
		t.Fatal("WaitServed did not return after CloseSessions ended the stream")
	}
	select {
	case err := <-ended:
		if err == nil {
			t.Error("the stream's end after CloseSessions is nil, want why it ended")
		}
	default:
		t.Error("WaitServed returned before the stream's end was handed on")
	}
}
