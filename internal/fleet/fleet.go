// Package fleet is the control plane's side of the runner protocol
// (runyard.runner.v1): it holds the one live stream of each connected runner,
// keeps renewals in memory and writes them to the store in batches, marks
// silent runners INACTIVE, and pushes a runner's desired state the moment a
// user changes it. The rules for phases live in internal/runners.
package fleet

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
)

// DefaultTimeout is how long a runner may stay silent before it is INACTIVE.
const DefaultTimeout = 30 * time.Second

// Fleet tracks connected runners.
type Fleet struct {
	svc *runners.Service
	// pods, when set, puts the runner's pods in its desired state and
	// records its reports on them.
	pods *pods.Service
	// autos, when set, puts the runner's environments and automations in
	// its desired state and records its reports on them.
	autos *Automations
	// releases, when set, puts the release of their channel in the desired
	// state of runners that update themselves (releases.go).
	releases Releases
	// epochs, when set, fences the runners' streams (SetEpochs).
	epochs     Epochs
	timeout    time.Duration
	flushEvery time.Duration
	log        *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session // by runner ID
	// closing is set by CloseSessions: a stream that registers after it
	// (its request was already in flight) is closed at once, or the
	// server's shutdown would wait on it until its deadline.
	closing bool
	pending map[string]pendingRenewal
	// terminals are the clients waiting for a runner to open a terminal,
	// by session ID.
	terminals map[string]*terminalWait
	// envSessions are the clients waiting for a runner to open a session
	// into an environment (session.go), by session ID: *sessionWait.
	envSessions sync.Map

	connected atomic.Int64
	renewals  atomic.Int64
	// serving counts the streams being served (Serve), WaitServed's.
	serving       sync.WaitGroup
	openTerminals atomic.Int64 // Terminal streams and log connections open
	logConns      atomic.Int64 // log connections taken (ServeLogRaw)
	// rm holds the runners' managed metrics (runnermetrics.go).
	rm runnerMetrics

	// OnConnect and OnDisconnect, when set, are told when a runner's
	// stream starts and ends on this control plane, so that other replicas
	// can find it (replicaproxy). They are called on the stream's
	// goroutine.
	OnConnect    func(orgID, runnerID string, since time.Time)
	OnDisconnect func(orgID, runnerID string, since time.Time)
	// RunnerURL, when set, is the URL of a runner's own file ("log",
	// "support-bundle") on this control plane: status.logUrl and
	// status.supportBundleUrl.
	RunnerURL func(runnerID, file string) string
	// LogsOnStreams asks runners for logs on Terminal streams only, never
	// on a connection of their own (ServeLogRaw); the runner's fallback
	// path, which the tests keep working.
	LogsOnStreams bool
}

// New returns a fleet for the runners of svc; timeout zero means
// DefaultTimeout. Call Run to flush renewals and sweep silent runners.
func New(svc *runners.Service, timeout time.Duration, log *slog.Logger) *Fleet {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Fleet{
		svc:        svc,
		timeout:    timeout,
		flushEvery: min(5*time.Second, timeout/3),
		log:        log,
		sessions:   map[string]*session{},
		pending:    map[string]pendingRenewal{},
		terminals:  map[string]*terminalWait{},
	}
}

// Timeout is how long a runner may stay silent before it is INACTIVE.
func (f *Fleet) Timeout() time.Duration { return f.timeout }

// Epochs stores the fencing tokens of runners' streams (sqlstore).
type Epochs interface {
	// AcceptRunnerStream increments a live runner's epoch and returns it;
	// CodeNotFound for a missing or deleted runner.
	AcceptRunnerStream(ctx context.Context, orgID, runnerID string) (int64, error)
	// RunnerEpochs returns the current epoch of each runner of ids that
	// exists.
	RunnerEpochs(ctx context.Context, ids []string) (map[string]int64, error)
}

// SetEpochs makes the fleet fence runners' streams: every accepted stream
// gets the runner's next epoch, and a stream whose epoch was superseded (a
// newer daemon with the same identity connected, here or on another
// replica) has its reports refused and is ended with ABORTED, so that the
// superseded daemon changes nothing and stops.
func (f *Fleet) SetEpochs(e Epochs) { f.epochs = e }

// pendingRenewal is a renewal not yet written, with the stream it came on.
type pendingRenewal struct {
	runners.Renewal
	s *session
}

// SetPods makes the fleet deliver pods to runners.
func (f *Fleet) SetPods(p *pods.Service) { f.pods = p }

// RenewInterval is how often runners renew: a third of the timeout, so that
// two lost renewals do not yet make a runner INACTIVE.
func (f *Fleet) RenewInterval() time.Duration { return f.timeout / 3 }

// Connected is the number of runners with a live stream to this process.
func (f *Fleet) Connected() int64 { return f.connected.Load() }

// Renewals is the number of renewals received since start.
func (f *Fleet) Renewals() int64 { return f.renewals.Load() }

// TerminalStreams is the number of Terminal streams open from runners.
func (f *Fleet) TerminalStreams() int64 { return f.openTerminals.Load() }

// LogConnections is the number of logs runners sent on connections of
// their own (ServeLogRaw) since start.
func (f *Fleet) LogConnections() int64 { return f.logConns.Load() }

// Run flushes renewals and sweeps silent runners until ctx ends, then
// flushes once more so that no renewal received is lost.
func (f *Fleet) Run(ctx context.Context) {
	t := time.NewTicker(f.flushEvery)
	defer t.Stop()
	// Runners cannot renew while the control plane is down. After a start,
	// give them one timeout to reconnect before judging them silent, or a
	// restart would mark every runner INACTIVE and fail its pods.
	sweepFrom := time.Now().Add(f.timeout)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			f.flush(fctx)
			cancel()
			return
		case <-t.C:
			f.flush(ctx)
			if time.Now().Before(sweepFrom) {
				continue
			}
			if n, err := f.svc.SweepSilent(ctx, f.timeout); err != nil {
				f.log.Error("sweep silent runners", "err", err)
			} else if n > 0 {
				f.log.Info("runners went inactive", "count", n)
			}
		}
	}
}

func (f *Fleet) flush(ctx context.Context) {
	f.mu.Lock()
	if len(f.pending) == 0 {
		f.mu.Unlock()
		return
	}
	pending := make([]pendingRenewal, 0, len(f.pending))
	for _, r := range f.pending {
		pending = append(pending, r)
	}
	clear(f.pending)
	f.mu.Unlock()
	pending = f.dropSuperseded(ctx, pending)
	batch := make([]runners.Renewal, 0, len(pending))
	for _, r := range pending {
		batch = append(batch, r.Renewal)
	}
	if err := f.svc.RecordRenewals(ctx, batch); err != nil {
		f.log.Error("record renewals", "count", len(batch), "err", err)
		// Put them back unless newer ones arrived meanwhile.
		f.mu.Lock()
		for _, r := range pending {
			if _, ok := f.pending[r.RunnerID]; !ok {
				f.pending[r.RunnerID] = r
			}
		}
		f.mu.Unlock()
	}
}

// dropSuperseded checks the renewals' streams against their runners'
// current epochs in one read: a renewal from a superseded stream is not
// recorded, and its stream is ended. Renewals are not checked one by one,
// as reports are: they are the one frequent message.
func (f *Fleet) dropSuperseded(ctx context.Context, pending []pendingRenewal) []pendingRenewal {
	if f.epochs == nil {
		return pending
	}
	ids := make([]string, len(pending))
	for i, r := range pending {
		ids[i] = r.RunnerID
	}
	current, err := f.epochs.RunnerEpochs(ctx, ids)
	if err != nil {
		// Recording a renewal of a superseded stream only keeps a runner
		// fresh that has a newer stream anyway; reports stay fenced.
		f.log.Error("check epochs of renewing runners", "err", err)
		return pending
	}
	kept := pending[:0]
	for _, r := range pending {
		if e, ok := current[r.RunnerID]; ok && e != r.s.epoch {
			r.s.cancel(supersededError(r.s.epoch, e))
			continue
		}
		kept = append(kept, r)
	}
	return kept
}

// Changed tells the runner's live stream, if any, to send its desired state
// again. runners.Service calls it after a user changed or deleted a runner.
func (f *Fleet) Changed(orgID, runnerID string) {
	f.mu.Lock()
	s := f.sessions[runnerID]
	f.mu.Unlock()
	if s != nil && s.orgID == orgID {
		s.poke()
	}
}

// OrgChanged tells every live stream of an organization's runners to send
// its desired state again.
func (f *Fleet) OrgChanged(orgID string) {
	f.mu.Lock()
	var hit []*session
	for _, s := range f.sessions {
		if s.orgID == orgID {
			hit = append(hit, s)
		}
	}
	f.mu.Unlock()
	for _, s := range hit {
		s.poke()
	}
}

// Holds reports whether this control plane holds the stream of runnerID.
func (f *Fleet) Holds(runnerID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sessions[runnerID] != nil
}

// Resync tells every live stream to send its desired state again.
func (f *Fleet) Resync() {
	f.mu.Lock()
	all := make([]*session, 0, len(f.sessions))
	for _, s := range f.sessions {
		all = append(all, s)
	}
	f.mu.Unlock()
	for _, s := range all {
		s.poke()
	}
}

// Stream is the bidirectional stream of one runner (connect.BidiStream).
// Send and Receive may be called concurrently, but neither concurrently
// with itself.
type Stream interface {
	Receive() (*runnerv1.ConnectRequest, error)
	Send(*runnerv1.ConnectResponse) error
	// CloseReceive makes a Receive that blocks, and every later one,
	// return an error. The fleet receives on the stream's own goroutine
	// (Serve), so this is how it ends a stream from its side: replaced,
	// superseded, revoked, deleted, or the control plane shutting down.
	CloseReceive()
}

type session struct {
	orgID, runnerID string
	tokenID         string
	// epoch is the stream's fencing token (Epochs); 0 without fencing.
	epoch int64
	// claims are the epochs the runner's active pods are bound to, as last
	// read (sendDesired: by the handler before the stream is ready, then by
	// its sender, one at a time).
	claims map[string]int64
	// acks are messages waiting to be sent: renewal acks, OpenTerminal,
	// OpenSession. Whoever queues one calls kick.
	acks   chan *runnerv1.ConnectResponse
	cancel context.CancelCauseFunc
	done   <-chan struct{} // closed when the stream ended
	// since is when the stream started: it tells this stream's record of
	// where the runner is connected from a newer stream's.
	since time.Time

	// What sends. The stream's handler goroutine receives (a blocking
	// Receive needs a goroutine of its own, and the handler's is there
	// anyway); sends happen on a sender goroutine that runs only while
	// there is something to send (kick, sender), so an idle stream holds
	// one goroutine of the fleet's, not two. Sends stay in one goroutine
	// at a time and in order, and the receiving never waits on them.
	f      *Fleet
	ctx    context.Context // the stream's, ended by cancel
	stream Stream
	mu     sync.Mutex
	// ready is set once the handler has sent the Welcome and the first
	// desired state: no sender starts before.
	ready bool
	// ended is set when the handler is about to return: no sender starts
	// after, since a send on a finished handler's stream panics in
	// net/http.
	ended bool
	// sending is set while a sender goroutine runs.
	sending bool
	// wanted is set when the desired state is to be sent again (poke);
	// one pending resend reads the latest state, so pokes coalesce.
	wanted  bool
	senders sync.WaitGroup
}

// poke asks for the desired state to be read and sent again.
func (s *session) poke() {
	s.mu.Lock()
	s.wanted = true
	s.mu.Unlock()
	s.kick()
}

// kick starts a sender unless one runs, the stream is not ready yet (the
// handler sends what is pending once it is), or it has ended.
func (s *session) kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready || s.ended || s.sending {
		return
	}
	s.sending = true
	s.senders.Add(1)
	go s.f.sender(s)
}

// sender sends the queued messages and, when poked, the desired state,
// until there is nothing left to send; an error ends the stream.
func (f *Fleet) sender(s *session) {
	defer s.senders.Done()
	for {
		if s.ctx.Err() != nil {
			// The stream ends; kick starts no other sender now.
			return
		}
		select {
		case msg := <-s.acks:
			if err := s.stream.Send(msg); err != nil {
				s.cancel(fmt.Errorf("send: %w", err))
				return
			}
			continue
		default:
		}
		s.mu.Lock()
		want := s.wanted
		s.wanted = false
		if !want && len(s.acks) == 0 {
			// Whoever queues after this sees sending unset and kicks.
			s.sending = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if !want {
			continue
		}
		r, err := f.svc.Self(s.ctx)
		if apperr.Is(err, apperr.CodeNotFound) {
			err = errDeleted
		}
		if err == nil {
			err = f.sendDesired(s.ctx, s, s.stream, r)
		}
		if err != nil {
			s.cancel(err)
			return
		}
	}
}

// Errors that end a session; the daemon tells them apart by code.
var (
	errReplaced = &apperr.Error{Code: apperr.CodeAborted,
		Message: "another process connected with this runner's identity; the newer connection wins"}
	errDeleted = apperr.Unauthenticated("the runner was deleted")
)

// supersededError ends a stream whose epoch is no longer the runner's. The
// daemon stops on ABORTED instead of reconnecting.
func supersededError(epoch, current int64) error {
	return &apperr.Error{Code: apperr.CodeAborted, Message: fmt.Sprintf(
		"this daemon was replaced: another daemon connected with this runner's identity (stream epoch %d, current %d); reports from this one are refused", epoch, current)}
}

// superseded turns a refused claim into the error that ends the stream.
func (f *Fleet) superseded(ctx context.Context, s *session, err error) error {
	if apperr.Is(err, apperr.CodeAborted) {
		if cerr := f.checkEpoch(ctx, s); cerr != nil {
			return cerr
		}
	}
	return err
}

// checkEpoch refuses a report from a stream that was superseded.
func (f *Fleet) checkEpoch(ctx context.Context, s *session) error {
	if f.epochs == nil {
		return nil
	}
	current, err := f.epochs.RunnerEpochs(ctx, []string{s.runnerID})
	if err != nil {
		return fmt.Errorf("check stream epoch: %w", err)
	}
	if e, ok := current[s.runnerID]; ok && e != s.epoch {
		return supersededError(s.epoch, e)
	}
	return nil
}

// Serve runs one runner's stream until it ends. The caller in ctx must be a
// runner; its first message must be a status snapshot.
//
// Serve's goroutine spends the stream's life blocked in Receive (on a
// Connect stream below the handlers of net/http, the middlewares and
// connect; ServeDetached's on a goroutine of its own): its stack is most
// of what an idle stream costs. The work with deep stacks (the store, the
// desired state) is done in frames that return (accept, handle), so that
// what stays on the stack while it waits is small and the collector can
// shrink the stack to it.
func (f *Fleet) Serve(ctx context.Context, stream Stream) error {
	f.serving.Add(1)
	defer f.serving.Done()
	return f.serve(ctx, stream)
}

// ServeDetached serves stream as Serve does, on a goroutine of its own,
// and hands end what Serve would return. The stream is counted before it
// returns, so that WaitServed waits for it once its HTTP handler returned.
func (f *Fleet) ServeDetached(ctx context.Context, stream Stream, end func(error)) {
	f.serving.Add(1)
	go func() {
		defer f.serving.Done()
		end(f.serve(ctx, stream))
	}()
}

func (f *Fleet) serve(ctx context.Context, stream Stream) error {
	s, err := f.accept(ctx, stream)
	if err != nil {
		return err
	}
	defer f.close(s)
	return f.receive(s)
}

// accept accepts a stream: it reads the first status snapshot, records it,
// registers the session and sends the Welcome and the first desired state.
//
//go:noinline
func (f *Fleet) accept(ctx context.Context, stream Stream) (*session, error) {
	c, err := identity.RequireRunner(ctx)
	if err != nil {
		return nil, err
	}
	first, err := stream.Receive()
	if err != nil {
		return nil, fmt.Errorf("receive first message: %w", err)
	}
	st := first.GetStatus()
	if st == nil {
		return nil, apperr.Invalid("status", "the first message of a stream must be a status snapshot")
	}
	// The stream is accepted before its first report is recorded: from
	// here on, every older stream of this runner is superseded.
	var epoch int64
	if f.epochs != nil {
		if epoch, err = f.epochs.AcceptRunnerStream(ctx, c.OrgID, c.RunnerID); err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				return nil, errDeleted
			}
			return nil, fmt.Errorf("accept stream: %w", err)
		}
	}
	r, err := f.svc.Report(ctx, f.reportOf(c.RunnerID, st))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	s := &session{
		orgID: c.OrgID, runnerID: c.RunnerID, tokenID: c.TokenID, epoch: epoch, done: ctx.Done(), since: time.Now(),
		acks: make(chan *runnerv1.ConnectResponse, 8),
		f:    f, ctx: ctx, stream: stream,
	}
	// Whatever ends the stream from this side ends its Receive too. (When
	// the request's own context ends, the client reset the stream or the
	// connection broke, and net/http ends the read itself.)
	s.cancel = func(cause error) {
		cancel(cause)
		stream.CloseReceive()
	}
	f.register(s)
	f.log.Info("runner connected", "runner", r.ID, "name", r.Name, "version", st.GetVersion())

	if err := stream.Send(&runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_Welcome{Welcome: &runnerv1.Welcome{
		RunnerId:       r.ID,
		OrganizationId: r.OrgID,
		RenewInterval:  durationpb.New(f.RenewInterval()),
		Timeout:        durationpb.New(f.timeout),
		Epoch:          epoch,
		// ReportExecution takes reports of the steps that changed.
		PartialExecutionReports: f.autos != nil,
	}}}); err != nil {
		f.close(s)
		return nil, fmt.Errorf("send welcome: %w", err)
	}
	if err := f.sendDesired(ctx, s, stream, r); err != nil {
		f.close(s)
		return nil, err
	}
	// From here on a sender sends what is queued or poked meanwhile.
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	s.kick()
	return s, nil
}

// close ends a session whose handler is about to return: no send happens
// after it, since a send on a finished handler's stream panics in net/http.
func (f *Fleet) close(s *session) {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
	s.cancel(nil)
	s.senders.Wait()
	f.unregister(s)
}

// sendDesired sends the runner's whole desired state, its pods included.
func (f *Fleet) sendDesired(ctx context.Context, s *session, stream Stream, r *runners.Runner) error {
	// A superseded stream is handed nothing: its daemon is to stop. A
	// claim of new pods checks the epoch itself; otherwise it is read.
	checked := false
	msg := desiredOf(r)
	if f.pods != nil && r.Spec.DesiredPhase != runners.PhaseDeleted {
		desired, err := f.pods.Desired(ctx)
		if err != nil {
			return err
		}
		// Each pod is bound to the first stream it is handed to; a daemon
		// starts only pods bound to its own streams (PodSpec.started_epoch).
		// A pod's binding never changes once made, so the session keeps
		// the ones it saw and asks the store only when a new pod appears.
		claims := s.claims
		if f.epochs != nil {
			for _, p := range desired {
				if _, ok := claims[p.Key]; !ok {
					if claims, err = f.pods.Claim(ctx, s.epoch); err != nil {
						return f.superseded(ctx, s, err)
					}
					s.claims, checked = claims, true
					break
				}
			}
		}
		for _, p := range desired {
			if f.epochs != nil && claims[p.Key] == 0 {
				// Not bound (the stream was superseded meanwhile, or the
				// pod finished): handing it over could start it twice.
				continue
			}
			msg.GetDesired().Pods = append(msg.GetDesired().Pods, &runnerv1.PodSpec{
				Key: p.Key, Argv: p.Spec.Argv, Env: p.Spec.Env, Workdir: p.Spec.Workdir, Input: p.Spec.Input,
				StartedEpoch: claims[p.Key],
			})
		}
		bins, err := f.pods.AgentBinaries(ctx)
		if err != nil {
			return err
		}
		msg.GetDesired().AgentBinaries = bins
	}
	if f.autos != nil && r.Spec.DesiredPhase != runners.PhaseDeleted {
		if err := f.addEnvironments(ctx, r, msg.GetDesired()); err != nil {
			return err
		}
	}
	if err := f.addUpdate(ctx, r, msg.GetDesired()); err != nil {
		return err
	}
	if !checked {
		if err := f.checkEpoch(ctx, s); err != nil {
			return err
		}
	}
	if err := stream.Send(msg); err != nil {
		return fmt.Errorf("send desired state: %w", err)
	}
	return nil
}

// receive hands the runner's messages to handle until the stream ends; it
// returns nil when the runner closes the stream. Its frame is small: it is
// what the stream's goroutine holds while it waits (Serve).
func (f *Fleet) receive(s *session) error {
	for {
		msg, err := s.stream.Receive()
		if err != nil {
			if s.ctx.Err() != nil {
				return context.Cause(s.ctx)
			}
			return nil
		}
		if done, err := f.handle(s.ctx, s, msg); done || err != nil {
			return err
		}
	}
}

// handle handles one message of the runner; done is set when the stream
// is to end without an error.
//
//go:noinline
func (f *Fleet) handle(ctx context.Context, s *session, msg *runnerv1.ConnectRequest) (done bool, err error) {
	// Every report is checked against the runner's current epoch: a
	// superseded daemon changes nothing. Renewals are checked in batches
	// (dropSuperseded).
	if _, renewal := msg.Message.(*runnerv1.ConnectRequest_Renewal); !renewal {
		if err := f.checkEpoch(ctx, s); err != nil {
			return false, err
		}
	}
	switch m := msg.Message.(type) {
	case *runnerv1.ConnectRequest_Renewal:
		f.renew(s)
		select {
		case s.acks <- &runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_RenewalAck{
			RenewalAck: &runnerv1.RenewalAck{SentAt: m.Renewal.GetSentAt()}}}:
			s.kick()
		default: // the runner is not reading; a missing ack is harmless
		}
	case *runnerv1.ConnectRequest_Status:
		if _, err := f.svc.Report(ctx, f.reportOf(s.runnerID, m.Status)); err != nil {
			return false, err
		}
	case *runnerv1.ConnectRequest_PodStatus:
		if f.pods == nil {
			return false, nil
		}
		if _, err := f.pods.ReportStatus(ctx, podReportOf(m.PodStatus)); err != nil {
			if apperr.Is(err, apperr.CodeNotFound) {
				// A pod deleted or moved meanwhile: nothing to record.
				return false, nil
			}
			return false, err
		}
	case *runnerv1.ConnectRequest_EnvironmentStatus, *runnerv1.ConnectRequest_ServiceStatus, *runnerv1.ConnectRequest_ExecutionStatus:
		if f.autos == nil {
			return false, nil
		}
		var err error
		switch m := m.(type) {
		case *runnerv1.ConnectRequest_EnvironmentStatus:
			err = f.reportEnvironment(ctx, m.EnvironmentStatus)
		case *runnerv1.ConnectRequest_ServiceStatus:
			err = f.reportService(ctx, s.runnerID, m.ServiceStatus)
		case *runnerv1.ConnectRequest_ExecutionStatus:
			err = f.reportExecution(ctx, s.runnerID, m.ExecutionStatus)
		}
		switch {
		case apperr.Is(err, apperr.CodeNotFound):
			// Removed meanwhile (a forced delete): nothing to record.
		case apperr.Is(err, apperr.CodeInvalid):
			// One bad report must not cut the runner off its work.
			f.log.Warn("runner sent an invalid report", "runner", s.runnerID, "err", err)
		case err != nil:
			return false, err
		}
	case *runnerv1.ConnectRequest_DeletionComplete:
		if err := f.svc.ConfirmDeletion(ctx); err != nil {
			return false, err
		}
		f.log.Info("runner deleted itself after stopping its work", "runner", s.runnerID)
		return true, nil
	default:
		return false, apperr.Invalid("message", "unknown message type %T", msg.Message)
	}
	return false, nil
}

func (f *Fleet) renew(s *session) {
	f.renewals.Add(1)
	f.mu.Lock()
	f.pending[s.runnerID] = pendingRenewal{s: s, Renewal: runners.Renewal{OrgID: s.orgID, RunnerID: s.runnerID, At: time.Now().UTC().Truncate(time.Microsecond)}}
	f.mu.Unlock()
}

func (f *Fleet) register(s *session) {
	f.mu.Lock()
	old := f.sessions[s.runnerID]
	f.sessions[s.runnerID] = s
	closing := f.closing
	f.mu.Unlock()
	if closing {
		s.cancel(errShuttingDown)
	}
	if old != nil {
		f.log.Warn("runner connected again: closing its older stream", "runner", s.runnerID)
		old.cancel(errReplaced)
	} else {
		f.connected.Add(1)
	}
	if f.OnConnect != nil {
		f.OnConnect(s.orgID, s.runnerID, s.since)
	}
}

func (f *Fleet) unregister(s *session) {
	f.mu.Lock()
	current := f.sessions[s.runnerID] == s
	if current {
		delete(f.sessions, s.runnerID)
	}
	f.mu.Unlock()
	if current {
		f.connected.Add(-1)
		f.log.Info("runner disconnected", "runner", s.runnerID)
		if f.OnDisconnect != nil {
			f.OnDisconnect(s.orgID, s.runnerID, s.since)
		}
	}
}

// reportOf is the runner's report of st; its log and support bundle are
// served at f.RunnerURL's URLs.
func (f *Fleet) reportOf(runnerID string, st *runnerv1.Status) runners.Report {
	rep := runners.Report{
		Version:    st.GetVersion(),
		OS:         st.GetOs(),
		Arch:       st.GetArch(),
		Hostname:   st.GetHostname(),
		Region:     st.GetRegion(),
		Labels:     st.GetLabels(),
		MaxPods:    int(st.GetMaxPods()),
		PublicKey:  st.GetPublicKey(),
		Draining:   st.GetDraining(),
		AgentTypes: st.GetAgentTypes(),
		GatewayURL: st.GetGatewayUrl(),
	}
	if l := st.GetGatewayLatency(); l != nil {
		rep.GatewayLatency = l.AsDuration()
	}
	if u := st.GetUpdate(); u != nil && u.GetState() != "" {
		rep.Update = &runners.UpdateReport{State: u.GetState(), TargetVersion: u.GetTargetVersion(), Failure: u.GetFailure()}
		if u.GetFailedAt() != nil {
			rep.Update.FailedAt = u.GetFailedAt().AsTime()
		}
	}
	for _, kv := range st.GetAdditionalInfo() {
		rep.AdditionalInfo = append(rep.AdditionalInfo, runners.FieldValue{Key: kv.GetKey(), Value: kv.GetValue()})
	}
	for _, c := range st.GetCapabilities() {
		rep.Capabilities = append(rep.Capabilities, runners.Capability(c.String()))
	}
	if f.RunnerURL != nil {
		rep.LogURL, rep.SupportBundleURL = f.RunnerURL(runnerID, "log"), f.RunnerURL(runnerID, "support-bundle")
	}
	for _, c := range st.GetComponents() {
		rep.Components = append(rep.Components, runners.Component{
			Name: c.GetName(), Healthy: c.GetHealth() == runnerv1.Health_HEALTH_HEALTHY,
			Version: c.GetVersion(), Message: c.GetMessage(), GitSHA: c.GetGitSha(), Release: c.GetRelease(),
		})
	}
	return rep
}

func podReportOf(st *runnerv1.PodStatus) pods.Report {
	rep := pods.Report{Key: st.GetKey(), Reason: st.GetReason()}
	switch st.GetState() {
	case runnerv1.PodState_POD_STATE_RUNNING:
		rep.Status = pods.StatusRunning
	case runnerv1.PodState_POD_STATE_TERMINATED:
		rep.Status = pods.StatusTerminated
	case runnerv1.PodState_POD_STATE_FAILED:
		rep.Status = pods.StatusFailed
	}
	if st.ExitCode != nil {
		code := int(st.GetExitCode())
		rep.ExitCode = &code
	}
	if st.GetStartedAt() != nil {
		t := st.GetStartedAt().AsTime()
		rep.StartedAt = &t
	}
	if st.GetFinishedAt() != nil {
		t := st.GetFinishedAt().AsTime()
		rep.FinishedAt = &t
	}
	return rep
}

func desiredOf(r *runners.Runner) *runnerv1.ConnectResponse {
	return &runnerv1.ConnectResponse{Message: &runnerv1.ConnectResponse_Desired{Desired: &runnerv1.DesiredState{
		Phase:    gitpodv1.RunnerPhase(gitpodv1.RunnerPhase_value[string(r.Spec.DesiredPhase)]),
		LogLevel: gitpodv1.LogLevel(gitpodv1.LogLevel_value[string(r.Spec.Configuration.LogLevel)]),
		Version:  r.UpdatedAt.UnixMicro(),
		Metrics:  metricsConfigOf(r),
	}}}
}

// metricsConfigOf is where the runner is to push its metrics. The
// password travels sealed to the runner's key, like a secret's value.
func metricsConfigOf(r *runners.Runner) *runnerv1.MetricsConfig {
	m := r.Spec.Configuration.Metrics
	if !m.ManagedMetricsEnabled && !m.Enabled {
		return nil
	}
	c := &runnerv1.MetricsConfig{Enabled: m.Enabled, Url: m.URL, Username: m.Username, Managed: m.ManagedMetricsEnabled}
	if m.Password != "" {
		// Without a key (a runner that never reported one) the password
		// cannot travel: the runner pushes without one.
		if sealed, err := secrets.Seal([]byte(m.Password), r.Report.PublicKey); err == nil {
			c.SealedPassword = sealed
		}
	}
	return c
}

// errRevoked ends a stream whose token was revoked: by an administrator, or
// because another daemon redeemed an exchange token of the same runner and
// replaced this one (identity.Service.ExchangeWithKey).
var errRevoked = apperr.Unauthenticated("token has been revoked (by an administrator, or because another daemon registered with this runner's identity and replaced this one)")

// TokenRevoked ends the stream opened with a token that was just revoked;
// identity.Service calls it.
func (f *Fleet) TokenRevoked(orgID, tokenID string) {
	f.mu.Lock()
	var hit []*session
	for _, s := range f.sessions {
		if s.orgID == orgID && s.tokenID == tokenID {
			hit = append(hit, s)
		}
	}
	f.mu.Unlock()
	for _, s := range hit {
		s.cancel(errRevoked)
	}
}

var errShuttingDown = &apperr.Error{Code: apperr.CodeUnavailable, Message: "the control plane is shutting down; reconnect"}

// CloseSessions ends every stream so that a graceful shutdown does not wait
// on them; runners reconnect to another replica or to this one when it is
// back.
// WaitServed waits until every Serve returned, or ctx ends (false). A
// stream on a connection of its own is served past its HTTP handler, so
// the server's shutdown does not wait for it: the server waits here
// before it closes the store.
func (f *Fleet) WaitServed(ctx context.Context) bool {
	done := make(chan struct{})
	go func() { f.serving.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (f *Fleet) CloseSessions() {
	f.mu.Lock()
	f.closing = true
	sessions := make([]*session, 0, len(f.sessions))
	for _, s := range f.sessions {
		sessions = append(sessions, s)
	}
	f.mu.Unlock()
	for _, s := range sessions {
		s.cancel(errShuttingDown)
	}
}
