// Package runner is the runner daemon: it makes a host a runner. It exchanges
// its one-time token once, keeps its credentials and key pair in a state
// directory, and holds one stream to the control plane over which it renews
// its registration, reports its status and receives its desired state. When
// the control plane goes away it reconnects with exponential backoff and
// jitter; it gives up only when its credentials are refused.
//
//	start ─▶ exchange token (first start only) ─▶ connect ─▶ session ──lost──▶ backoff ─┐
//	                                                 ▲                                   │
//	                                                 └───────────────────────────────────┘
//	session ──credentials refused / replaced──▶ exit non-zero
//	session ──desired phase DELETED──▶ stop work, confirm ─▶ exit 0
package runner

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	gitpodv1 "github.com/runyard/runyard/gen/gitpod/v1"
	"github.com/runyard/runyard/gen/gitpod/v1/gitpodv1connect"
	runnerv1 "github.com/runyard/runyard/gen/runyard/runner/v1"
	"github.com/runyard/runyard/gen/runyard/runner/v1/runnerv1connect"
	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/rawconn"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/runner/envs"
	podmgr "github.com/runyard/runyard/internal/runner/pods"
	"github.com/runyard/runyard/internal/runner/proc"
	"github.com/runyard/runyard/internal/runner/ring"
	"github.com/runyard/runyard/internal/runnerstream"
	"github.com/runyard/runyard/internal/sdnotify"
)

// Config is what `runyard runner` takes.
type Config struct {
	// Server is the control plane URL. It may be empty on later starts: the
	// state directory remembers it.
	Server string
	// ExchangeToken is needed on the first start only.
	ExchangeToken string
	// TLS, when not nil, is the TLS configuration for an https Server: the
	// CLI's --ca-file (a control plane with a certificate of its own CA)
	// or --insecure-skip-verify. nil trusts the system's roots.
	TLS      *tls.Config
	StateDir string
	// Name is the host name the runner reports; default os.Hostname.
	Name    string
	Labels  []string
	MaxPods int
	Region  string
	// Version is reported in the runner's status; empty means this
	// binary's (internal/buildinfo).
	Version string
	// StopGrace is how long a terminated pod, a stopping service or a
	// stopped task has between SIGTERM and SIGKILL; zero means 2 minutes.
	StopGrace time.Duration
	// ReadyInterval is how often a service's ready probe runs; zero means
	// 1s.
	ReadyInterval time.Duration
	// HealthAddr, when set, serves /healthz (the daemon's loop makes
	// progress) and /readyz (connected to the control plane) there.
	HealthAddr string
	// HealthInterval is how often the daemon checks the health of its
	// components (components.go); zero means DefaultHealthInterval.
	HealthInterval time.Duration
	// MetricsInterval is how often the runner pushes its metrics when its
	// configuration asks it to; zero means DefaultMetricsInterval.
	MetricsInterval time.Duration
	// ReleasePublicKey is the release public key the runner trusts: an
	// update is installed only when its SHA256SUMS carries a signature
	// of this key (never one the control plane sends). Without it the
	// runner does not update itself.
	ReleasePublicKey release.PublicKey
	// UpdateRollbackAfter bounds how long an updated binary has to reach
	// the control plane before the previous one is put back; zero means
	// DefaultUpdateRollbackAfter.
	UpdateRollbackAfter time.Duration
	// UpdateCheckInterval is how often the updater looks at its window
	// and drain while it waits; zero means 5s.
	UpdateCheckInterval time.Duration
	// Executable is the binary an update replaces; empty means this
	// process's (os.Executable).
	Executable string
	// Now is the clock of the update window; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Level is the logger's level; the runner's spec.configuration.logLevel
	// sets it while the runner runs.
	Level *slog.LevelVar
	// BootID returns the host's boot id, which tells the runner that the
	// host rebooted (postMachineStart); nil means
	// /proc/sys/kernel/random/boot_id. Tests set it.
	BootID func() string
	// Notify is the service manager's notification socket (systemd's
	// $NOTIFY_SOCKET, see notify.go); nil when none listens.
	Notify *sdnotify.Notifier
	// StreamOnConnect keeps the runner's stream on the Connect procedure,
	// never on a connection of its own (runnerstream): what a runner
	// behind a proxy does, which its tests keep working.
	StreamOnConnect bool
}

// ErrDeleted is returned by Run when the runner stopped because it was
// deleted; the process exits 0.
var ErrDeleted = errors.New("the runner was deleted: it stopped its work and removed its credentials")

// Daemon is one running runner.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	state    *state
	http     *http.Client
	control  runnerv1connect.RunnerControlServiceClient
	sessions runnerv1connect.RunnerControlServiceClient // Session streams, without gzip (see Open)
	draining bool
	// noRawStream is set once the control plane answered that it has no
	// stream connections (runnerstream): an older one.
	noRawStream bool
	health      health
	pods        *podmgr.Manager
	envs        *envs.Manager
	// customAgents are the organization's custom agent types and their
	// binaries, from the last desired state.
	customAgents map[string]string
	// envsOpen is set once the automations executor opened: its health
	// check cannot tell by itself.
	envsOpen atomic.Bool
	// healthChanged wakes the session to send a new status after a
	// component's health changed.
	healthChanged chan struct{}
	// gitSHA is the commit the binary was built from, if known.
	gitSHA string
	// checkTimeout bounds one health check (defaultCheckTimeout).
	checkTimeout time.Duration
	// epochs are the fencing tokens of this process's streams (Welcome)
	// and of earlier processes' on this state dir (epochs.json): a pod
	// handed to one of them may be started here (not twice: the pods
	// directory knows what was), a pod handed to another daemon's stream
	// never is. Only the session goroutine uses it.
	epochs map[int64]bool
	// metrics is the registry of /metrics and of pushes (metrics.go);
	// metricsTarget is where pushes go (nil: nowhere), metricsWake pushes
	// at once after it changed, pushFailures counts failed pushes.
	metrics       *prometheus.Registry
	metricsTarget atomic.Pointer[metricsTarget]
	metricsWake   chan struct{}
	pushFailures  atomic.Int64
	// runnerID is the runner's ID, from the first Welcome ("" before).
	runnerID atomic.Value
	// latency is the round trip of the latest renewal and its
	// acknowledgement, in nanoseconds (0 before the first).
	latency atomic.Int64
	// ownLog is the daemon's own recent log (status.logUrl).
	ownLog *ownLog
	// started is when the daemon started (the support bundle).
	started time.Time
	// docker is whether a Docker engine answered at start.
	docker bool
	// reportedLatency is the round trip last sent in a status, when
	// (session goroutine only; zero at each new stream).
	reportedLatency   time.Duration
	reportedLatencyAt time.Time
	// upd is the self-update (update.go); exe the binary it replaces.
	upd *updater
	exe string
	// sd is what the daemon tells the service manager (notify.go).
	sd svcNotify
	// reapply makes the session apply its last desired state again (what a
	// drain for an update held back); lastDesired is that state (session
	// goroutine only).
	reapply     chan struct{}
	lastDesired *runnerv1.DesiredState
}

func (d *Daemon) now() time.Time {
	if d.cfg.Now != nil {
		return d.cfg.Now()
	}
	return time.Now()
}

// statusChanged makes the session send a new status.
func (d *Daemon) statusChanged() {
	select {
	case d.healthChanged <- struct{}{}:
	default:
	}
}

// Executable is the binary the daemon runs (and an update replaced): the
// one to exec after Run returned ErrRestart.
func (d *Daemon) Executable() string { return d.exe }

// New opens the state directory (taking its lock) and registers with the
// control plane if this is the first start.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Level == nil {
		cfg.Level = new(slog.LevelVar)
	}
	if cfg.BootID == nil {
		cfg.BootID = proc.BootID
	}
	if cfg.MaxPods < 0 {
		return nil, errors.New("--max-pods must not be negative")
	}
	if cfg.Version == "" {
		cfg.Version = buildinfo.Version()
	}
	if cfg.UpdateRollbackAfter <= 0 {
		cfg.UpdateRollbackAfter = DefaultUpdateRollbackAfter
	}
	if cfg.UpdateCheckInterval <= 0 {
		cfg.UpdateCheckInterval = 5 * time.Second
	}
	exe := cfg.Executable
	if exe == "" {
		p, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this binary: %w", err)
		}
		exe = p
	}
	st, err := openState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	own := &ownLog{ring: ring.New(ownLogSize)}
	cfg.Logger = teeLogger(cfg.Logger, own, cfg.Level)
	d := &Daemon{cfg: cfg, log: cfg.Logger, state: st, healthChanged: make(chan struct{}, 1), gitSHA: gitRevision(), checkTimeout: defaultCheckTimeout,
		epochs: st.loadEpochs(), metricsWake: make(chan struct{}, 1), ownLog: own, started: time.Now(),
		exe: exe, reapply: make(chan struct{}, 1)}
	d.upd = newUpdater(d)
	d.sd.n = cfg.Notify
	d.sd.main = !guardHoldsMain(d.upd.trial)
	d.metrics = d.newMetrics()
	if err := d.register(ctx); err != nil {
		st.close()
		return nil, err
	}
	d.http = httpClient(st.Server, cfg.TLS)
	d.control = runnerv1connect.NewRunnerControlServiceClient(&http.Client{Transport: gatherEnvelopes{d.http.Transport}}, st.Server)
	// Session streams accept no gzip, so the control plane sends a
	// session's bytes (a forwarded connection, an upload) as they are:
	// compressing them was a third of the CPU of a port forward, and such
	// bytes mostly compress badly anyway.
	d.sessions = runnerv1connect.NewRunnerControlServiceClient(&http.Client{Transport: readAhead{d.http.Transport}}, st.Server, connect.WithAcceptCompression("gzip", nil, nil), connect.WithCodec(sessionCodec{}))
	if d.pods, err = podmgr.New(podmgr.Config{StateDir: cfg.StateDir, StopGrace: cfg.StopGrace, Logger: cfg.Logger.With("part", "pods")}); err != nil {
		st.close()
		return nil, err
	}
	d.docker = dockerAnswers()
	if d.envs, err = envs.New(envs.Config{
		StateDir: cfg.StateDir, StopGrace: cfg.StopGrace, ReadyInterval: cfg.ReadyInterval,
		Docker: d.docker, Logger: cfg.Logger.With("part", "automations"),
		Start: d.startAutomations, Open: d.openSecret, BootID: cfg.BootID,
	}); err != nil {
		st.close()
		return nil, err
	}
	return d, nil
}

// Close releases the state directory.
func (d *Daemon) Close() { d.state.close() }

// register trades the exchange token for an access token. A new exchange
// token replaces stored credentials (that is how a runner whose token was
// revoked comes back); one that was already used, as when a service unit
// passes the same token on every start, leaves them in place.
func (d *Daemon) register(ctx context.Context) error {
	server := strings.TrimRight(d.cfg.Server, "/")
	if server == "" {
		server = d.state.Server
	}
	if d.cfg.ExchangeToken == "" {
		if d.state.AccessToken == "" {
			return fmt.Errorf("state dir %s holds no credentials: pass --exchange-token (from `runyard runners create` or `runyard runners token ID`)", d.cfg.StateDir)
		}
		if server != d.state.Server {
			d.log.Info("using the control plane URL given on the command line", "server", server, "registered_with", d.state.Server)
			d.state.Server = server
		}
		return nil
	}
	if err := checkURL(server); err != nil {
		return err
	}
	client := gitpodv1connect.NewIdentityServiceClient(httpClient(server, d.cfg.TLS), server)
	req := connect.NewRequest(&gitpodv1.ExchangeTokenRequest{ExchangeToken: d.cfg.ExchangeToken})
	// The key binds the redemption to this daemon: if the answer is lost,
	// starting again with the same token and state dir within a minute
	// still works (identity.ExchangeRetryWindow), for this key pair only.
	req.Header().Set(identity.PublicKeyHeader, base64.StdEncoding.EncodeToString(d.state.key.PublicKey().Bytes()))
	res, err := client.ExchangeToken(ctx, req)
	if err != nil {
		if d.state.AccessToken != "" {
			// Also when the control plane is not reachable yet (a host that
			// boots before its network): the stored credentials get the
			// reconnect loop's patience.
			d.log.Warn("the exchange token was not accepted; using the stored credentials", "reason", message(err))
			d.state.Server = server
			return nil
		}
		return fmt.Errorf("exchange token: %s", message(err))
	}
	if err := d.state.saveCredentials(Credentials{Server: server, AccessToken: res.Msg.GetAccessToken()}); err != nil {
		return err
	}
	d.log.Info("registered with the control plane", "server", server)
	return nil
}

func checkURL(server string) error {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--server must be an http:// or https:// URL, got %q", server)
	}
	return nil
}

// readAhead reads a response's body in large reads. Connect reads a
// message in pieces of at most 32 KiB, and HTTP/2 answers every read of
// 4 KiB or more with WINDOW_UPDATE frames, each a write to the connection
// and a wake-up of the control plane's reader: a session's stream of
// 256 KiB messages sent over a dozen per message. One read takes whatever
// the stream has buffered (up to readAheadSize).
type readAhead struct{ http.RoundTripper }

// readAheadSize is a read's most: one large DATA frame (MaxReadFrameSize).
// Each Session stream holds a buffer of it.
const readAheadSize = 256 << 10

func (t readAhead) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.RoundTripper.RoundTrip(req)
	if err == nil && res.Body != nil {
		res.Body = &readAheadBody{Reader: bufio.NewReaderSize(res.Body, readAheadSize), Closer: res.Body}
	}
	return res, err
}

type readAheadBody struct {
	*bufio.Reader
	io.Closer
}

// httpClient speaks HTTP/2 to the control plane: over TLS for https, h2c for
// http, because the runner's stream is bidirectional. tc, when not nil, is
// the TLS configuration (Config.TLS).
func httpClient(server string, tc *tls.Config) *http.Client {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if tc != nil {
		tlsConfig = tc.Clone()
		tlsConfig.MinVersion = max(tlsConfig.MinVersion, tls.VersionTLS12)
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tlsConfig,
		Protocols:           new(http.Protocols),
		// Pings detect a control plane that vanished without closing the
		// connection (a host that died, a cut network).
		// Large frames carry a session's bytes (envaccess) in few
		// writes: every frame is a hand-over to the connection's writer.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 15 * time.Second, PingTimeout: 10 * time.Second, MaxReadFrameSize: 256 << 10},
	}
	if strings.HasPrefix(server, "https://") {
		tr.Protocols.SetHTTP2(true)
	} else {
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

func message(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message() + " (" + ce.Code().String() + ")"
	}
	return err.Error()
}

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	switch connect.CodeOf(err) {
	case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeAborted, connect.CodeInvalidArgument:
		return true
	}
	return false
}

// Run holds the stream to the control plane until ctx ends (nil), the runner
// is deleted (ErrDeleted) or its credentials are refused.
func (d *Daemon) Run(ctx context.Context) (err error) {
	// The updater ends the daemon with ErrRestart as the cause; the
	// deferred closes below let go of the work for the new binary.
	ctx, restart := context.WithCancelCause(ctx)
	defer restart(nil)
	defer func() {
		if errors.Is(context.Cause(ctx), ErrRestart) {
			err = ErrRestart
		}
	}()
	// Pods outlive the daemon under their process holders: Open adopts
	// what a predecessor left running, and Close lets go of what runs now
	// for the next daemon (a restart or an upgrade kills no agent).
	if err := d.pods.Open(ctx); err != nil {
		return fmt.Errorf("open pod manager: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), d.stopGrace()+10*time.Second)
		defer cancel()
		// No session reads the manager's events any more, and Close waits
		// for them to be read: the next start reports every pod anyway.
		go func() {
			for range d.pods.Events() {
			}
		}()
		if err := d.pods.Close(cctx); err != nil {
			d.log.Warn("stop pods", "err", err)
		}
	}()
	// Services outlive the daemon under their holders and are adopted by
	// the next one; running task executions stop with it (SIGTERM, then
	// SIGKILL after the grace period) and are reported failed.
	if err := d.envs.Open(); err != nil {
		return fmt.Errorf("open automations executor: %w", err)
	}
	d.envsOpen.Store(true)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), d.stopGrace()+10*time.Second)
		defer cancel()
		go func() {
			for range d.envs.Reports() {
			}
		}()
		if err := d.envs.Close(cctx); err != nil {
			d.log.Warn("stop automations", "err", err)
		}
	}()
	// The first check runs before the first connection, so the first status
	// already tells the truth. The checks stop before the components close
	// (deferred calls run last first): a closed component is no news.
	probes := d.probes()
	d.checkComponents(probes)
	hctx, stopHealth := context.WithCancel(ctx)
	healthDone := make(chan struct{})
	go func() { defer close(healthDone); d.watchHealth(hctx, probes) }()
	defer func() { stopHealth(); <-healthDone }()
	d.health.step()
	if d.cfg.HealthAddr != "" {
		stop, err := d.serveHealth(ctx, d.cfg.HealthAddr)
		if err != nil {
			return err
		}
		defer stop()
	}
	uctx, stopUpdater := context.WithCancel(ctx)
	updDone := make(chan struct{})
	go func() { defer close(updDone); d.upd.run(uctx, func() { restart(ErrRestart) }) }()
	defer func() { stopUpdater(); <-updDone }()
	pctx, stopPush := context.WithCancel(ctx)
	pushDone := make(chan struct{})
	go func() { defer close(pushDone); d.pushMetrics(pctx) }()
	defer func() { stopPush(); <-pushDone }()
	b := backoff{min: 500 * time.Millisecond, max: 30 * time.Second}
	for {
		d.health.step()
		sessions := d.health.sessions.Load()
		err := d.session(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrDeleted):
			return err
		case connect.CodeOf(err) == connect.CodeAborted:
			d.stopWork(ctx)
			return &apperr.Error{Code: apperr.CodeAborted, Message: "stopping: " + message(err)}
		case permanent(err):
			d.stopWork(ctx)
			// Keep the code, so that the exit code tells a refused token
			// (5) from a replaced identity (10) and from a failure to start (1).
			return &apperr.Error{Code: apperr.Code(connect.CodeOf(err).String()), Message: fmt.Sprintf(
				"the control plane refused this runner: %s; if the runner was deleted or its token revoked, create a new exchange token with `runyard runners token ID` and start with --exchange-token", message(err))}
		}
		// A stream that got as far as the welcome proves the control plane
		// is back: the next loss starts the backoff from its first step, so
		// that a runner is back within moments of every restart in a row
		// (waiting for a minute-long session before resetting made the
		// waits grow restart after restart).
		if d.health.sessions.Load() != sessions {
			b.reset()
			d.health.stepAtLoss.Store(int64(b.n))
		}
		// A live runner must come back before the control plane's timeout
		// declares it lost (and fails its pods), so the wait never grows
		// past the renewal interval the control plane asked for: a third of
		// that timeout.
		if iv := time.Duration(d.health.interval.Load()); iv > 0 {
			b.max = min(30*time.Second, iv)
		}
		wait := b.next()
		d.notifyLost(err)
		d.log.Warn("lost the control plane; reconnecting", "in", wait.Round(time.Millisecond), "err", message(err))
		// Only a refused connection (the control plane's host is up, its
		// process is not) is probed: behind a load balancer that accepts
		// every connection, probing would defeat the backoff.
		probe := ""
		if errors.Is(err, syscall.ECONNREFUSED) {
			probe = d.state.Server
		}
		if !waitOrReachable(ctx, wait, probe) {
			return nil
		}
	}
}

// stopWork ends every pod, service and execution of a runner that the
// control plane refused or replaced: no daemon of this state directory
// will report on them again, so they must not run on unseen. (A daemon
// that merely stops leaves them to its successor.)
func (d *Daemon) stopWork(ctx context.Context) {
	d.log.Warn("stopping this runner's pods, services and task executions")
	d.stopPods()
	d.stopAutomations(ctx)
}

// probeEvery is how often a runner waiting to reconnect checks whether the
// control plane's port accepts connections again.
const probeEvery = 400 * time.Millisecond

// waitOrReachable waits for d, or less: a control plane that restarts is
// back well before a backoff that grew during its outage ends, so the wait
// is cut short once a bare TCP connect to its address succeeds (a cheap
// probe: no TLS, no request, closed at once; probes are jittered). It
// returns false when ctx ended.
func waitOrReachable(ctx context.Context, d time.Duration, server string) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	addr := probeAddr(server)
	for {
		next := probeEvery/2 + rand.N(probeEvery/2+1)
		probe := time.NewTimer(next)
		select {
		case <-ctx.Done():
			probe.Stop()
			return false
		case <-timer.C:
			probe.Stop()
			return true
		case <-probe.C:
			if addr == "" {
				continue
			}
			dctx, cancel := context.WithTimeout(ctx, probeEvery/2)
			c, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
			cancel()
			if err == nil {
				c.Close()
				return ctx.Err() == nil
			}
		}
	}
}

// probeAddr is the host:port of a control plane URL, "" when it cannot be
// told (then the wait is not cut short).
func probeAddr(server string) string {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Port() != "" {
		return u.Host
	}
	switch u.Scheme {
	case "https":
		return net.JoinHostPort(u.Hostname(), "443")
	case "http":
		return net.JoinHostPort(u.Hostname(), "80")
	}
	return ""
}

func (d *Daemon) stopGrace() time.Duration {
	if d.cfg.StopGrace > 0 {
		return d.cfg.StopGrace
	}
	return 2 * time.Minute
}

// backoff is exponential with full jitter, so that runners that lost the
// same control plane do not all return at the same instant.
type backoff struct {
	min, max time.Duration
	n        int
}

func (b *backoff) next() time.Duration {
	ceil := b.min << min(b.n, 16)
	if ceil > b.max || ceil <= 0 {
		ceil = b.max
	}
	b.n++
	// Half fixed, half random: never above max, never a busy loop.
	return ceil/2 + rand.N(ceil/2+1)
}

func (b *backoff) reset() { b.n = 0 }

func (d *Daemon) status() *runnerv1.Status {
	host := d.cfg.Name
	if host == "" {
		host, _ = os.Hostname()
	}
	st := &runnerv1.Status{
		Version:        d.cfg.Version,
		Os:             runtime.GOOS,
		Arch:           runtime.GOARCH,
		Hostname:       host,
		Region:         d.cfg.Region,
		Labels:         d.cfg.Labels,
		MaxPods:        int32(d.cfg.MaxPods),
		Components:     d.statusComponents(),
		PublicKey:      d.state.key.PublicKey().Bytes(),
		Draining:       d.draining || d.upd.drain.Load(),
		Update:         d.upd.status(),
		AgentTypes:     availableAgentTypes(d.customAgents),
		Capabilities:   d.capabilities(),
		AdditionalInfo: d.hostFacts(),
	}
	d.gateway(st)
	return st
}

// availableAgentTypes lists the agent types, built-in and custom, whose
// binary is on this host's PATH, sorted.
func availableAgentTypes(custom map[string]string) []string {
	var out []string
	for _, a := range pods.BuiltinAgentTypes() {
		if _, err := exec.LookPath(a.Binary()); err == nil {
			out = append(out, a.ID)
		}
	}
	for id, bin := range custom {
		if _, err := exec.LookPath(bin); err == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// podStatus is the protocol message reporting a pod manager event.
func podStatus(ev podmgr.Event) *runnerv1.ConnectRequest {
	return &runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: podStatusOf(ev)}}
}

func podStatusOf(ev podmgr.Event) *runnerv1.PodStatus {
	st := &runnerv1.PodStatus{Key: ev.Key, Reason: ev.Reason}
	switch ev.Status {
	case podmgr.StatusRunning:
		st.State = runnerv1.PodState_POD_STATE_RUNNING
	case podmgr.StatusTerminated:
		st.State = runnerv1.PodState_POD_STATE_TERMINATED
	case podmgr.StatusFailed:
		st.State = runnerv1.PodState_POD_STATE_FAILED
	}
	if ev.Status != podmgr.StatusRunning && ev.ExitCode >= 0 {
		code := int32(ev.ExitCode)
		st.ExitCode = &code
	}
	if !ev.StartedAt.IsZero() {
		st.StartedAt = timestamppb.New(ev.StartedAt)
	}
	if !ev.FinishedAt.IsZero() {
		st.FinishedAt = timestamppb.New(ev.FinishedAt)
	}
	return st
}

// session runs one stream until it breaks.
func (d *Daemon) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, transport := d.openStream(ctx)
	defer stream.CloseRequest()
	if err := stream.Send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: d.status()}}); err != nil {
		return streamErr(stream.Receive, err)
	}
	first, err := stream.Receive()
	if err != nil {
		return err
	}
	w := first.GetWelcome()
	if w == nil {
		return fmt.Errorf("protocol error: expected welcome, got %T", first.Message)
	}
	interval := w.GetRenewInterval().AsDuration()
	if interval <= 0 {
		interval = 10 * time.Second
	}
	d.log.Info("connected to the control plane", "runner", w.GetRunnerId(), "renew_every", interval, "epoch", w.GetEpoch(), "stream", transport)
	if d.epochs == nil {
		d.epochs = map[int64]bool{}
	}
	d.epochs[w.GetEpoch()] = true
	// Recorded before any pod of the stream can be started: the next
	// daemon on this state dir may then start what this one was handed
	// and did not start. Unrecorded, such pods are reported lost instead.
	if err := d.state.saveEpochs(d.epochs); err != nil {
		d.log.Warn("record the stream's epoch", "err", err)
	}
	d.health.interval.Store(int64(interval))
	d.runnerID.Store(w.GetRunnerId())
	d.reportedLatency = 0
	d.health.sessions.Add(1)
	d.health.connected.Store(true)
	defer d.health.connected.Store(false)
	// A new binary on trial has reached the control plane: it stays.
	d.upd.confirm()
	d.notifyConnected()

	msgs := make(chan *runnerv1.ConnectResponse)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Receive()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Only the goroutine above reads the stream; after a failed send the
	// reason is whatever it reads next.
	sendErr := func(err error) error {
		select {
		case rerr := <-recvErr:
			if !errors.Is(rerr, io.EOF) {
				return rerr
			}
		case <-time.After(5 * time.Second):
		}
		return err
	}
	send := func(m *runnerv1.ConnectRequest) error {
		if err := stream.Send(m); err != nil {
			return sendErr(err)
		}
		return nil
	}
	// Every pod this runner holds, so the control plane learns of ends that
	// happened while the stream was down; reports are idempotent there.
	for _, ev := range d.pods.Pods() {
		if err := send(podStatus(ev)); err != nil {
			return err
		}
	}
	partial := w.GetPartialExecutionReports()
	d.envs.PartialReports(partial)
	for _, m := range d.envs.Snapshot() {
		if err := send(m); err != nil {
			return err
		}
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastAck := time.Now()
	deleting := false
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-recvErr:
			if deleting && errors.Is(err, io.EOF) {
				// The control plane ended the stream once it recorded the
				// deletion.
				if err := d.state.forget(); err != nil {
					d.log.Warn("could not remove the credentials", "err", err)
				}
				return ErrDeleted
			}
			if deleting {
				return fmt.Errorf("confirm deletion: %s", message(err))
			}
			return err
		case <-tick.C:
			d.health.step()
			if time.Since(lastAck) > 3*interval {
				return errors.New("the control plane acknowledged no renewal in three intervals")
			}
			if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Renewal{
				Renewal: &runnerv1.Renewal{SentAt: timestamppb.Now()}}}); err != nil {
				return err
			}
		case ev, ok := <-d.pods.Events():
			if !ok {
				return errors.New("the pod manager closed")
			}
			if err := send(podStatus(ev)); err != nil {
				return err
			}
		case <-d.reapply:
			if deleting || d.lastDesired == nil {
				continue
			}
			act, lost := d.apply(d.lastDesired)
			for _, st := range lost {
				if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: st}}); err != nil {
					return err
				}
			}
			if act == actionReport {
				if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: d.status()}}); err != nil {
					return err
				}
			}
		case <-d.healthChanged:
			// A deleting runner's status no longer matters: the control
			// plane removes the runner once it confirms.
			if deleting {
				continue
			}
			if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: d.status()}}); err != nil {
				return err
			}
		case m, ok := <-d.envs.Reports():
			if !ok {
				return errors.New("the automations executor closed")
			}
			if !partial {
				m = d.envs.WholeReport(m)
			}
			if err := send(m); err != nil {
				return err
			}
		case m := <-msgs:
			switch m := m.Message.(type) {
			case *runnerv1.ConnectResponse_RenewalAck:
				lastAck = time.Now()
				if d.measured(m.RenewalAck) {
					if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: d.status()}}); err != nil {
						return err
					}
				}
			case *runnerv1.ConnectResponse_OpenTerminal:
				if m.OpenTerminal.GetRunnerFile() != runnerv1.RunnerFile_RUNNER_FILE_UNSPECIFIED {
					go d.serveRunnerFile(ctx, m.OpenTerminal)
				} else if m.OpenTerminal.GetLogId() != "" {
					go d.serveLog(ctx, m.OpenTerminal)
				} else {
					go d.serveTerminal(ctx, m.OpenTerminal)
				}
			case *runnerv1.ConnectResponse_OpenSession:
				go d.serveSession(ctx, m.OpenSession)
			case *runnerv1.ConnectResponse_Desired:
				if deleting {
					continue
				}
				d.lastDesired = m.Desired
				act, lost := d.apply(m.Desired)
				for _, st := range lost {
					if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_PodStatus{PodStatus: st}}); err != nil {
						return err
					}
				}
				switch act {
				case actionReport:
					if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_Status{Status: d.status()}}); err != nil {
						return err
					}
				case actionDelete:
					deleting = true
					d.stopPods()
					d.stopAutomations(ctx)
					if err := send(&runnerv1.ConnectRequest{Message: &runnerv1.ConnectRequest_DeletionComplete{
						DeletionComplete: &runnerv1.DeletionComplete{}}}); err != nil {
						return err
					}
				}
			}
		}
	}
}

// controlStream is the runner's stream: on a connection of its own
// (runnerstream.Client) or the Connect procedure's.
type controlStream interface {
	Send(*runnerv1.ConnectRequest) error
	Receive() (*runnerv1.ConnectResponse, error)
	CloseRequest() error
}

// openStream opens the runner's stream, on a connection of its own when
// the control plane takes one, else on the Connect procedure (whose
// answer then also says what was wrong: a refused token, a deleted
// runner). Either ends with ctx. transport names the way it took.
func (d *Daemon) openStream(ctx context.Context) (stream controlStream, transport string) {
	if !d.cfg.StreamOnConnect && !d.noRawStream && d.canDialRaw(runnerstream.Path) {
		conn, err := d.dialRaw(ctx, runnerstream.Path, runnerstream.Protocol, "")
		if err == nil {
			context.AfterFunc(ctx, func() { conn.Close() })
			return runnerstream.NewClient(conn), "connection"
		}
		var se *rawconn.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			// A control plane without it: not asked again.
			d.noRawStream = true
		}
		d.log.Debug("stream connection refused: the Connect stream instead", "err", err)
	}
	cs := d.control.Connect(ctx)
	cs.RequestHeader().Set("Authorization", "Bearer "+d.state.AccessToken)
	return cs, "connect"
}

// streamErr prefers the server's error over a send failure: when the server
// ends a stream, Send fails with EOF and Receive has the reason. It is for use
// before the receiving goroutine starts.
func streamErr(receive func() (*runnerv1.ConnectResponse, error), sendErr error) error {
	if _, err := receive(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return sendErr
}

type action int

const (
	actionNone action = iota
	actionReport
	actionDelete
)

// stopPods ends every pod and waits for them, before the runner confirms its
// deletion.
func (d *Daemon) stopPods() {
	if err := d.pods.Ensure(nil); err != nil {
		d.log.Warn("stop pods", "err", err)
	}
	deadline := time.Now().Add(d.stopGrace() + 10*time.Second)
	for time.Now().Before(deadline) {
		running := 0
		for _, ev := range d.pods.Pods() {
			if ev.Status == podmgr.StatusRunning {
				running++
			}
		}
		if running == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.log.Warn("pods still running after the grace period; confirming the deletion anyway")
}

// apply converges on a desired state and says what to tell the control
// plane, with the pods it refused to start because another daemon of this
// runner was handed them first (reported failed: lost).
func (d *Daemon) apply(ds *runnerv1.DesiredState) (action, []*runnerv1.PodStatus) {
	var lost []*runnerv1.PodStatus
	d.cfg.Level.Set(slogLevel(ds.GetLogLevel()))
	d.setMetricsTarget(ds.GetMetrics())
	d.upd.setWant(ds.GetUpdate())
	// Draining for an update: nothing new starts (the next binary starts
	// it); what runs goes on.
	updDrain := d.upd.drain.Load()
	report := actionNone
	if !maps.Equal(d.customAgents, ds.GetAgentBinaries()) {
		before := availableAgentTypes(d.customAgents)
		d.customAgents = maps.Clone(ds.GetAgentBinaries())
		if !slices.Equal(before, availableAgentTypes(d.customAgents)) {
			report = actionReport
		}
	}
	if ds.GetPhase() != gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED {
		held := map[string]bool{}
		for _, ev := range d.pods.Pods() {
			held[ev.Key] = true
		}
		specs := make([]podmgr.Spec, 0, len(ds.GetPods()))
		for _, p := range ds.GetPods() {
			// A pod key starts at most once across daemons: one handed to
			// another process's stream is not started here (that process
			// may have started it), unless this process holds it already.
			if updDrain && !held[p.GetKey()] {
				continue
			}
			if e := p.GetStartedEpoch(); e != 0 && !d.epochs[e] && !held[p.GetKey()] {
				lost = append(lost, &runnerv1.PodStatus{Key: p.GetKey(), State: runnerv1.PodState_POD_STATE_FAILED, FinishedAt: timestamppb.Now(),
					Reason: fmt.Sprintf("lost: the pod was handed to another daemon of this runner (stream epoch %d), which may have started it; it is not started twice", e)})
				continue
			}
			specs = append(specs, podmgr.Spec{Key: p.GetKey(), Argv: p.GetArgv(), Env: p.GetEnv(), Workdir: p.GetWorkdir(), Input: p.GetInput()})
		}
		// Pods the set lacks are terminated; pods already started (after a
		// reconnect) are not started again.
		if err := d.pods.Ensure(specs); err != nil {
			d.log.Error("converge pods", "err", err)
		}
		envDS := ds
		if updDrain {
			known, _ := d.envs.Executions()
			envDS = &runnerv1.DesiredState{Environments: ds.GetEnvironments(), Services: ds.GetServices(), Secrets: ds.GetSecrets()}
			for _, x := range ds.GetExecutions() {
				if known[x.GetId()] {
					envDS.Executions = append(envDS.Executions, x)
				}
			}
		}
		d.envs.Apply(envDS)
	}
	d.log.Debug("received desired state", "phase", ds.GetPhase().String(), "log_level", ds.GetLogLevel().String(), "version", ds.GetVersion())
	switch ds.GetPhase() {
	case gitpodv1.RunnerPhase_RUNNER_PHASE_DELETED:
		// The session stops the pods (stopPods) before it confirms.
		d.log.Info("the runner is being deleted: stopping its work")
		d.draining = true
		return actionDelete, lost
	case gitpodv1.RunnerPhase_RUNNER_PHASE_INACTIVE:
		if !d.draining {
			d.draining = true
			d.log.Info("draining: taking no new work")
			return actionReport, lost
		}
	default:
		if d.draining {
			d.draining = false
			d.log.Info("active: taking work again")
			return actionReport, lost
		}
	}
	return report, lost
}

func slogLevel(l gitpodv1.LogLevel) slog.Level {
	switch l {
	case gitpodv1.LogLevel_LOG_LEVEL_DEBUG:
		return slog.LevelDebug
	case gitpodv1.LogLevel_LOG_LEVEL_WARN:
		return slog.LevelWarn
	case gitpodv1.LogLevel_LOG_LEVEL_ERROR:
		return slog.LevelError
	}
	return slog.LevelInfo
}
