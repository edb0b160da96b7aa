// Package server assembles the control plane: it opens the store, bootstraps
// the default organization, mounts every API surface on one mux and serves it
// over TLS or h2c until its context ends.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runyard/runyard/internal/api/audithttp"
	"github.com/runyard/runyard/internal/api/authhttp"
	"github.com/runyard/runyard/internal/api/clientip"
	"github.com/runyard/runyard/internal/api/connectapi"
	"github.com/runyard/runyard/internal/api/kubiya"
	"github.com/runyard/runyard/internal/api/logs"
	"github.com/runyard/runyard/internal/api/oidc"
	"github.com/runyard/runyard/internal/api/oidclogin"
	"github.com/runyard/runyard/internal/api/previewhttp"
	"github.com/runyard/runyard/internal/api/rest"
	"github.com/runyard/runyard/internal/api/runnerfiles"
	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/automations"
	"github.com/runyard/runyard/internal/broadcast"
	"github.com/runyard/runyard/internal/console"
	"github.com/runyard/runyard/internal/envaccess"
	"github.com/runyard/runyard/internal/environments"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/fleet"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/metrics"
	"github.com/runyard/runyard/internal/orgs"
	"github.com/runyard/runyard/internal/paging"
	"github.com/runyard/runyard/internal/pods"
	"github.com/runyard/runyard/internal/prebuilds"
	"github.com/runyard/runyard/internal/preview"
	"github.com/runyard/runyard/internal/releases"
	"github.com/runyard/runyard/internal/replicaproxy"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/secrets"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sshkeys"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
	"github.com/runyard/runyard/internal/store/sqlstore"
	"github.com/runyard/runyard/internal/users"
)

// Config is what `runyard server` takes.
type Config struct {
	// Listen is the address to listen on, e.g. 127.0.0.1:8080; port 0 picks
	// a free port.
	Listen string
	// DataDir holds the SQLite database and the admin-token file.
	DataDir string
	// DatabaseURL selects PostgreSQL (postgres://...); empty means SQLite in
	// DataDir.
	DatabaseURL string
	// TLSCert and TLSKey enable TLS; without them the server speaks h2c.
	TLSCert, TLSKey string
	// BootstrapToken is the admin key's value (RUNYARD_BOOTSTRAP_TOKEN).
	BootstrapToken string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	// RunnerTimeout is how long a runner may stay silent before it is
	// INACTIVE; runners renew every third of it. Zero means 30s.
	RunnerTimeout time.Duration
	// DeletedRunnerRetention is how long a deleted runner stays readable by
	// GetRunner, phase DELETED, before it is purged. Zero means
	// runners.DefaultDeletedRetention.
	DeletedRunnerRetention time.Duration
	// LostAfter is how long a runner may stay unreachable (INACTIVE) before
	// its pods, services and task executions are failed for good; until
	// then a runner that comes back keeps them. Zero means
	// runners.DefaultLostAfter, or RunnerTimeout when that is longer.
	LostAfter time.Duration
	// InactivitySweep is how often environments with
	// spec.timeout.disconnected are checked for inactivity; zero means 30s.
	InactivitySweep time.Duration
	// RunnerStreams is where runners' streams go: "connection" (each on a
	// connection of its own, runnerstream: about 17 KiB per runner here),
	// "http2" (Connect streams, which share one HTTP/2 connection with the
	// runner's terminals and sessions: about 100 KiB), or "auto" (empty):
	// connection on SQLite, http2 on PostgreSQL. Several replicas behind a
	// load balancer that spreads one runner's connections over them need
	// http2: a terminal must reach the replica holding its runner's stream.
	RunnerStreams string
	// LogsOnStreams asks runners for logs on Terminal streams only, never
	// on connections of their own (fleet.Fleet.LogsOnStreams): what a
	// runner falls back to, which its tests keep working.
	LogsOnStreams bool
	// PrebuildSweep is how often prebuilds past their timeout fail and
	// due schedules create prebuilds; zero means 30 seconds.
	PrebuildSweep time.Duration
	// PrebuildKeep is how many snapshots each runner keeps per repository
	// and branch; zero means prebuilds.DefaultKeep.
	PrebuildKeep int
	// EventRetention is how long the change feed keeps events for
	// watchers that resume (WatchEvents' cursor); zero means
	// events.DefaultRetention.
	EventRetention time.Duration
	// AuditRetention is how long the audit log keeps entries; zero means
	// audit.DefaultRetention.
	AuditRetention time.Duration
	// PublicURL is the URL clients reach the control plane at (behind a
	// proxy, say); empty means the listener's URL.
	PublicURL string
	// RunnerImage is the image of the runners' Kubernetes manifests; empty
	// means manifest.DefaultImage() (this version's image).
	RunnerImage string
	// AdvertiseURL is the URL the other replicas sharing the PostgreSQL
	// database reach this one at, to relay pod terminals and logs of the
	// runners connected here; empty means the listener's URL.
	AdvertiseURL string
	// SSHListen, when set, is the address of the SSH server into
	// environments (envaccess.go); port 0 picks a free port.
	SSHListen string
	// PreviewDomain, when set, serves the ports environments list as
	// preview URLs at PORT--ENVIRONMENT_ID.PreviewDomain (preview.go).
	PreviewDomain string
	// ReadTimeout bounds reading one request with its body; zero means
	// DefaultReadTimeout. Requests without a body and the runners' streams
	// are not bound by it (see guard.go).
	ReadTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers; zero means
	// DefaultReadHeaderTimeout.
	ReadHeaderTimeout time.Duration
	// MaxUnauthenticatedPerIP limits, per remote address, the requests in
	// flight with a body and no credential (ExchangeToken) and the
	// connections still waiting for their first request; zero means
	// DefaultMaxUnauthenticatedPerIP.
	MaxUnauthenticatedPerIP int
	// TrustedProxies lists the proxies (addresses and CIDR prefixes,
	// comma-separated) whose X-Forwarded-For names the client; empty trusts
	// none, and every client is its direct peer.
	TrustedProxies string
	// ReleasePublicKey is the file of the release public key (PEM) that
	// checks the runner releases published here; empty refuses publishing.
	ReleasePublicKey string
	// SSO is single sign-on with an OpenID provider; off without an issuer.
	SSO sso.Config
	// SessionIdleTimeout ends a browser session unused for that long;
	// SessionMaxAge ends any session that long after its sign-in. Zero
	// means sessions.DefaultIdleTimeout and sessions.DefaultMaxAge.
	SessionIdleTimeout time.Duration
	SessionMaxAge      time.Duration
	// SignInLimits bound sign-in attempts; zero fields take
	// sessions.DefaultLimits'.
	SignInLimits sessions.Limits
	Logger       *slog.Logger
	// Stdout receives the one-time admin token message.
	Stdout interface{ Write([]byte) (int, error) }
}

// Server is a running control plane.
type Server struct {
	cfg Config
	// releaseKey checks published runner releases (releases.go).
	releaseKey []byte
	releases   *releases.Service
	log        *slog.Logger
	store      store.Store
	fleet      *fleet.Fleet
	// bus carries changes to the other replicas; nil with SQLite.
	bus *broadcast.Bus
	// events is the change feed (WatchEvents, the console).
	events *events.Hub
	// sessions records where runners' streams are for the other replicas;
	// nil unless relaying between replicas.
	sessions *replicaproxy.Recorder
	runners  *runners.Service
	pods     *pods.Service
	audit    *audit.Service
	// sso is single sign-on's routes; nil without --oidc-issuer.
	sso *oidclogin.Handler
	// trusted names the proxies whose X-Forwarded-For gives the client.
	trusted *clientip.Trusted
	// signIns holds the browser sessions of the console (internal/sessions).
	signIns *sessions.Service
	users   *users.Service
	// environments stops environments for inactivity (inactivity.go).
	environments *environments.Service
	prebuilds    *prebuilds.Service
	// access opens sessions into environments (envaccess.go); ssh, when
	// --ssh-listen is set, serves them over SSH.
	access *envaccess.Service
	ssh    *sshListener
	// preview serves preview URLs (preview.go); its domain is empty when
	// they are off.
	preview     *preview.Service
	previewHTTP *previewhttp.Handler
	// secrets holds the secrets service, whose SealedForRunner and
	// EnvVarsFor build the secrets part of a runner's desired state.
	secrets *secrets.Service
	// admin is the bootstrap admin key, for what the server does on a
	// user's behalf (the local runner of `runyard up`).
	admin    *identity.Token
	listener net.Listener
	http     *http.Server
	ready    atomic.Bool
	scheme   string
}

// Events returns the change feed, for adapters other than WatchEvents.
func (s *Server) Events() *events.Hub { return s.events }

// AdminTokenFile is the name of the file in the data directory that holds a
// generated admin key.
const AdminTokenFile = "admin-token"

// Open prepares the server: store, migrations, bootstrap, listener. The
// server answers requests once Serve runs.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 15 * time.Second
	}
	if cfg.RunnerTimeout != 0 && cfg.RunnerTimeout < 300*time.Millisecond {
		return nil, errors.New("--runner-timeout must be at least 300ms")
	}
	if cfg.DeletedRunnerRetention < 0 {
		return nil, errors.New("--deleted-runner-retention must not be negative")
	}
	if cfg.AuditRetention < 0 {
		return nil, fmt.Errorf("audit retention must be positive")
	}
	if cfg.AuditRetention == 0 {
		cfg.AuditRetention = audit.DefaultRetention
	}
	if cfg.DeletedRunnerRetention == 0 {
		cfg.DeletedRunnerRetention = runners.DefaultDeletedRetention
	}
	if err := checkLostAfter(&cfg); err != nil {
		return nil, err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key must be given together")
	}
	trusted, err := clientip.ParseTrusted("--trusted-proxies", cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	if cfg.BootstrapToken != "" && len(cfg.BootstrapToken) < identity.MinBootstrapTokenLength {
		return nil, fmt.Errorf("RUNYARD_BOOTSTRAP_TOKEN must be at least %d characters", identity.MinBootstrapTokenLength)
	}
	switch cfg.RunnerStreams {
	case "", RunnerStreamsAuto, RunnerStreamsConnection, RunnerStreamsHTTP2:
	default:
		return nil, fmt.Errorf("--runner-streams %q: want %s, %s or %s", cfg.RunnerStreams, RunnerStreamsAuto, RunnerStreamsConnection, RunnerStreamsHTTP2)
	}
	for flag, v := range map[string]string{"--public-url": cfg.PublicURL, "--advertise-url": cfg.AdvertiseURL} {
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s %q must be an absolute http or https URL", flag, v)
		}
	}
	if err := cfg.SSO.Validate(); err != nil {
		return nil, err
	}
	releaseKey, err := loadReleaseKey(cfg.ReleasePublicKey)
	if err != nil {
		return nil, err
	}
	previewDomain, err := preview.ParseDomain("--preview-domain", cfg.PreviewDomain)
	if err != nil {
		return nil, err
	}
	if cfg.ReadTimeout < 0 || cfg.ReadHeaderTimeout < 0 || cfg.MaxUnauthenticatedPerIP < 0 {
		return nil, errors.New("read timeouts and the per-address limit must not be negative")
	}
	if cfg.SessionIdleTimeout == 0 {
		cfg.SessionIdleTimeout = sessions.DefaultIdleTimeout
	}
	if cfg.SessionMaxAge == 0 {
		cfg.SessionMaxAge = sessions.DefaultMaxAge
	}
	if err := sessions.ValidateTimeouts(cfg.SessionIdleTimeout, cfg.SessionMaxAge); err != nil {
		return nil, err
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.ReadHeaderTimeout == 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.MaxUnauthenticatedPerIP == 0 {
		cfg.MaxUnauthenticatedPerIP = DefaultMaxUnauthenticatedPerIP
	}
	s := &Server{cfg: cfg, log: cfg.Logger, scheme: "http", trusted: trusted, releaseKey: releaseKey, preview: &preview.Service{Domain: previewDomain}}
	s.http = &http.Server{
		// What a silent or trickling client can hold: see guard.go.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
	}
	s.http.Protocols.SetHTTP1(true)
	// Everything that can fail on a bad flag happens before the database is
	// touched, so a mistyped flag leaves no half-initialized data directory.
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS key pair: %w", err)
		}
		s.http.TLSConfig = &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// The listener is wrapped by hand, so ALPN must offer h2 here
			// (ServeTLS would add it); gRPC needs HTTP/2.
			NextProtos: []string{"h2", "http/1.1"},
		}
		s.http.Protocols.SetHTTP2(true)
		s.scheme = "https"
	} else {
		// h2c, so gRPC clients work on plain loopback too.
		s.http.Protocols.SetUnencryptedHTTP2(true)
	}
	if cfg.DatabaseURL != "" && !isPostgresURL(cfg.DatabaseURL) {
		return nil, errors.New("--database must be a postgres:// URL (leave it unset for SQLite in the data dir)")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if s.http.TLSConfig != nil {
		ln = tls.NewListener(ln, s.http.TLSConfig)
	}
	s.listener = ln
	if err := s.open(ctx); err != nil {
		ln.Close()
		return nil, err
	}
	return s, nil
}

// open opens the store, bootstraps and mounts the APIs.
func (s *Server) open(ctx context.Context) error {
	// A database that cannot be reached fails the start before the data
	// directory and the secrets key are created: nothing is left behind.
	if s.cfg.DatabaseURL != "" {
		if err := postgres.Ping(ctx, s.cfg.DatabaseURL); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", s.cfg.DataDir, err)
	}
	// A bad secrets key fails the start before the database is touched.
	secretsKey, created, err := secrets.LoadKey(os.Getenv(secrets.KeyEnv), s.cfg.DataDir)
	if err != nil {
		return err
	}
	if created {
		path := filepath.Join(s.cfg.DataDir, secrets.KeyFile)
		s.log.Info("created the key that encrypts secrets: back it up with the database", "path", path)
		if s.cfg.DatabaseURL != "" {
			// Each replica would create its own file, and none could read
			// the others' secrets.
			s.log.Warn("with PostgreSQL, give every replica the same key in "+secrets.KeyEnv+" (the content of the key file)", "path", path)
		}
	}
	st, err := openStore(ctx, s.cfg)
	if err != nil {
		return err
	}
	s.store = st
	idSvc := identity.NewService(st)
	// ID tokens and logs tokens are signed with keys every replica shares.
	idSvc.Keys = st
	idSvc.Issuer = s.PublicURL
	if err := s.bootstrap(ctx, idSvc); err != nil {
		st.Close()
		return err
	}
	runnerSvc := runners.NewService(st)
	s.runners = runnerSvc
	s.fleet = fleet.New(runnerSvc, s.cfg.RunnerTimeout, s.log)
	s.fleet.SetEpochs(st)
	s.fleet.LogsOnStreams = s.cfg.LogsOnStreams
	// What changes a runner's work reaches the replica holding its stream:
	// with PostgreSQL that may be another replica (internal/broadcast).
	// A revoked or narrowed key also leaves the identity service's cache
	// of keys, on this replica and, through the bus, on every other.
	local := replicaLocal{Fleet: s.fleet, keys: idSvc}
	var hooks interface {
		Changed(orgID, runnerID string)
		OrgChanged(orgID string)
		TokenRevoked(orgID, tokenID string)
	} = local
	if s.cfg.DatabaseURL != "" {
		s.bus = broadcast.New(local, s.cfg.DatabaseURL, s.log)
		hooks = s.bus
		idSvc.ChangesReach = s.bus.Listening
	}
	runnerSvc.Changed = hooks.Changed
	idSvc.Revoked = hooks.TokenRevoked
	mux := http.NewServeMux()
	s.secrets = secrets.NewService(st, secretsKey)
	s.secrets.Now = runnerSvc.Now
	// A changed secret goes to the organization's runners at once: file
	// mounts follow their secret while environments run.
	s.secrets.Changed = hooks.OrgChanged
	// Environments and their automations reach runners through the fleet:
	// a change wakes the runner's stream, which resends its desired state.
	envSvc := environments.NewService(st)
	envSvc.Now = runnerSvc.Now
	envSvc.Changed = hooks.Changed
	s.environments = envSvc
	autoSvc := automations.NewManager(st)
	autoSvc.Now = runnerSvc.Now
	autoSvc.Changed = hooks.Changed
	envSvc.LogsTokens = idSvc
	envSvc.LogOwner = autoSvc.IsLogOf
	// A deleted runner takes its environments, with their services, tasks
	// and executions (the store cascades), along: nothing can run them any
	// more, and without this each would wait forever for its runner to
	// report it deleted, unless a user force-deleted it.
	runnerSvc.Deleted = func(orgID, runnerID string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if n, err := envSvc.RunnerDeleted(ctx, orgID, runnerID); err != nil {
			s.log.Error("remove the environments of a deleted runner", "runner", runnerID, "err", err)
		} else if n > 0 {
			s.log.Info("environments removed with their runner", "runner", runnerID, "environments", n)
		}
	}
	prebuildSvc := &prebuilds.Service{Store: st, Schedules: st, Envs: envSvc, Now: runnerSvc.Now, Changed: hooks.Changed, Keep: s.cfg.PrebuildKeep}
	s.prebuilds = prebuildSvc
	s.fleet.SetAutomations(fleet.Automations{
		Environments: envSvc, Automations: autoSvc, Secrets: s.secrets, Prebuilds: prebuildSvc,
		LogURL: func(runnerID, logID string) string { return logs.URL(s.PublicURL(), runnerID, logID) },
	})
	var proxy *replicaproxy.Proxy
	if s.cfg.DatabaseURL != "" {
		proxy = s.relayBetweenReplicas(ctx, st)
	}
	logs.Mount(mux, idSvc, envSvc, s.fleet, proxy, s.log)
	// The runner's own log and support bundle (status.logUrl, supportBundleUrl).
	runnerfiles.Mount(mux, idSvc, runnerSvc, s.fleet, proxy, s.log)
	s.fleet.RunnerURL = func(runnerID, file string) string {
		return runnerfiles.URL(s.PublicURL(), runnerID, runners.File(file))
	}
	oidc.Mount(mux, idSvc, s.PublicURL, s.log)
	s.mountReleases(mux, st, idSvc, runnerSvc, hooks.OrgChanged)
	s.events = events.NewHub(st, s.log)
	s.events.Retention = s.cfg.EventRetention
	eventSvc := &events.Service{Hub: s.events, Environment: func(ctx context.Context, id string) error {
		_, err := envSvc.Get(ctx, id)
		return err
	}}
	s.audit = audit.NewService(st)
	s.audit.Now = runnerSvc.Now
	// A disabled user's keys are revoked with them, and the streams opened
	// with those keys end on every replica; their browser sessions end too.
	s.users = &users.Service{Store: st, Now: runnerSvc.Now, TokenRevoked: hooks.TokenRevoked}
	s.users.Disabled = func(ctx context.Context, userID string) { s.endSessions(ctx, userID, false) }
	s.users.PasswordReset = func(ctx context.Context, userID string) { s.endSessions(ctx, userID, true) }
	s.users.PasswordChanged = s.endOtherSessions
	orgSvc := &orgs.Service{Store: st, Now: runnerSvc.Now, Deleted: func(orgID string) {
		// Its keys leave the key cache here and on every other replica.
		idSvc.OrganizationDeleted(orgID)
		hooks.OrgChanged(orgID)
	}}
	connectapi.Mount(mux, connectapi.Services{
		Identity: idSvc, Runners: runnerSvc, Fleet: s.fleet, Environments: envSvc, Automations: autoSvc,
		RunnerStreamConnections: s.runnerStreamConnections(),
		Secrets:                 s.secrets, Events: eventSvc, Audit: s.audit, Orgs: orgSvc,
		Users: s.users, PortURL: s.preview.URL, SSHKeys: &sshkeys.Service{Store: st, Now: runnerSvc.Now}, Prebuilds: prebuildSvc,
	}, s.log)
	kubiya.Mount(mux, kubiya.Services{Identity: idSvc, Runners: runnerSvc, Keys: st, RunnerTimeout: s.fleet.Timeout(),
		ServerURL: s.cfg.PublicURL, Image: s.cfg.RunnerImage}, s.log)
	s.pods = &pods.Service{Store: st, Now: runnerSvc.Now, RunnerTimeout: s.fleet.Timeout()}
	// Pods reach runners through the fleet: a placement or a terminate wakes
	// the runner's stream; a lost or deleted runner fails its pods.
	s.fleet.SetPods(s.pods)
	s.pods.Changed = hooks.Changed
	s.pods.AgentTypesChanged = hooks.OrgChanged
	s.pods.Terminals = s.fleet
	runnerSvc.LostAfter = s.cfg.LostAfter
	runnerSvc.Gone = s.runnerGone(autoSvc)
	s.access = s.environmentAccess(st, envSvc, proxy)
	if err := s.openSSH(ctx, st); err != nil {
		return err
	}
	if err := s.openPreview(ctx, st, idSvc, proxy); err != nil {
		return err
	}
	rest.Mount(mux, rest.Services{Identity: idSvc, Runners: runnerSvc, Pods: s.pods, RunnerTimeout: s.fleet.Timeout(), Proxy: proxy, Access: s.access}, s.log)
	// The web console at /: one more adapter over the same services.
	console.Mount(mux, console.Services{
		Identity: idSvc, Orgs: orgSvc, Runners: runnerSvc, Pods: s.pods, Environments: envSvc, Automations: autoSvc,
		Events: eventSvc, Audit: s.audit, PublicURL: s.PublicURL, Secrets: s.secrets, Users: s.users, RunnerImage: s.cfg.RunnerImage,
		Preview: s.preview,
	}, s.log)
	mux.Handle(replicaproxy.SessionRoute, proxy.SessionHandler(s.fleet, s.refuseRelay(idSvc)))
	mux.HandleFunc("GET /healthz", s.healthz)
	// /version takes no token either: `runyard version` asks it before any
	// login, and a release version is no secret (the runners report theirs).
	mux.HandleFunc("GET /version", serveVersion)
	// /metrics takes no token, like /healthz: see internal/metrics.
	m := metrics.New(s.fleet)
	m.AddCounts(st, s.log)
	m.AddPlacements(s.pods)
	m.AddGatherer(prometheus.GathererFunc(s.fleet.GatherRunnerMetrics))
	mux.Handle("GET /metrics", m.Handler())
	s.signIns = sessions.NewService(st, st, idSvc)
	s.signIns.Now = runnerSvc.Now
	s.signIns.IdleTimeout, s.signIns.MaxAge = s.cfg.SessionIdleTimeout, s.cfg.SessionMaxAge
	s.signIns.Limits = signInLimits(s.cfg.SignInLimits)
	authHandler := &authhttp.Handler{Sessions: s.signIns, Audit: s.audit, Secure: s.secureCookies, Log: s.log}
	authhttp.Mount(mux, authHandler)
	authhttp.MountCLILogin(mux, &authhttp.CLILogin{Auth: authHandler, Identity: idSvc, HasUsers: func(ctx context.Context) (bool, error) {
		us, err := st.FindUsers(ctx, users.UserFilter{Limit: 1})
		return len(us) > 0, err
	}})
	s.mountSSO(mux, st)
	g := newGuard(idSvc, m.Middleware(audithttp.Wrap(s.audit, mux, mux, s.log, proxy.Relayed)), s.cfg.MaxUnauthenticatedPerIP, s.log)
	g.sessions = s.signIns
	if s.previewHTTP != nil {
		s.previewHTTP.Sessions = s.signIns
	}
	s.http.Handler = s.trusted.Middleware(s.previewFirst(g))
	s.http.ConnState = g.ConnState
	s.http.RegisterOnShutdown(g.closePending)
	return nil
}

func isPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

func openStore(ctx context.Context, cfg Config) (store.Store, error) {
	if cfg.DatabaseURL == "" {
		return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "runyard.db"))
	}
	return postgres.Open(ctx, cfg.DatabaseURL)
}

func (s *Server) bootstrap(ctx context.Context, idSvc *identity.Service) error {
	res, err := idSvc.Bootstrap(ctx, s.cfg.BootstrapToken)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if s.admin, err = s.store.FindBootstrapToken(ctx, res.Org.ID); err != nil {
		return fmt.Errorf("bootstrap: find admin key: %w", err)
	}
	switch {
	case res.Secret != "":
		path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
		if err := os.WriteFile(path, []byte(res.Secret+"\n"), 0o600); err != nil {
			return fmt.Errorf("write admin token: %w", err)
		}
		if s.cfg.Stdout != nil {
			fmt.Fprintf(s.cfg.Stdout, "Created organization %q and its admin API key (shown once, also saved to %s):\n\n  %s\n\n",
				res.Org.Name, path, res.Secret)
		}
	case res.Created:
		s.log.Info("created admin API key from RUNYARD_BOOTSTRAP_TOKEN", "organization", res.Org.Name)
	case res.Restored:
		s.log.Warn("the admin API key had been revoked: restored it with the value of RUNYARD_BOOTSTRAP_TOKEN", "organization", res.Org.Name)
	case res.Rotated:
		s.log.Info("admin API key now takes the value of RUNYARD_BOOTSTRAP_TOKEN", "organization", res.Org.Name)
	case res.Revoked:
		s.log.Warn("the admin API key is revoked: to restore a working admin key, restart with RUNYARD_BOOTSTRAP_TOKEN set (at least 16 characters)",
			"organization", res.Org.Name)
	}
	if s.cfg.BootstrapToken != "" {
		// A key generated by an earlier start is dead once the value comes
		// from the environment; a stale file would make the CLI fail with
		// "invalid token".
		path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != s.cfg.BootstrapToken {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove stale %s: %w", path, err)
			}
			s.log.Info("removed the admin-token file: the admin key now comes from RUNYARD_BOOTSTRAP_TOKEN", "path", path)
		}
	}
	return nil
}

// URL is the base URL clients use, e.g. http://127.0.0.1:8080.
func (s *Server) URL() string {
	addr := s.listener.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("%s://%s", s.scheme, net.JoinHostPort(host, fmt.Sprint(addr.Port)))
}

// Values of Config.RunnerStreams (--runner-streams).
const (
	RunnerStreamsAuto       = "auto"
	RunnerStreamsConnection = "connection"
	RunnerStreamsHTTP2      = "http2"
)

// runnerStreamConnections reports whether runners' streams may go on
// connections of their own (Config.RunnerStreams). On PostgreSQL, by
// default, they do not: replicas may share the database behind a load
// balancer, and a runner's stream and its terminals must then reach the
// same replica, which one HTTP/2 connection ensures.
func (s *Server) runnerStreamConnections() bool {
	switch s.cfg.RunnerStreams {
	case RunnerStreamsConnection:
		return true
	case RunnerStreamsHTTP2:
		return false
	}
	return s.cfg.DatabaseURL == ""
}

// relayBetweenReplicas records in st which runners' streams this replica
// holds and returns the proxy that sends requests for the others' to the
// replica holding them.
func (s *Server) relayBetweenReplicas(ctx context.Context, st store.Store) *replicaproxy.Proxy {
	self := strings.TrimRight(s.cfg.AdvertiseURL, "/")
	if self == "" {
		if addr := s.listener.Addr().(*net.TCPAddr); addr.IP.IsUnspecified() {
			// Listening on every address, this replica does not know which
			// one the others reach it at, and the loopback address URL
			// falls back to would send relayed requests, credentials
			// included, to whatever listens on the other host's loopback.
			s.log.Warn("several replicas relay pod terminals and logs to each other only with --advertise-url " +
				"(this one listens on every address); without it, such a request for a runner connected to another replica is answered unavailable")
			return nil
		}
		self = s.URL()
	}
	s.sessions = replicaproxy.NewRecorder(st, self, s.log)
	s.fleet.OnConnect = s.sessions.Connected
	s.fleet.OnDisconnect = s.sessions.Disconnected
	key, err := st.ServerKey(ctx, replicaproxy.KeyName)
	if err != nil {
		// Relays still work; the replica they reach records them in the
		// audit log too.
		s.log.Error("load the key that signs requests relayed between replicas", "err", err)
	}
	return &replicaproxy.Proxy{Self: self, Find: st.FindRunnerSession, Log: s.log, Key: key}
}

// PublicURL is the URL clients reach the control plane at, put in the log
// URLs of services and task executions: --public-url, or else the URL of
// the listener.
func (s *Server) PublicURL() string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	return s.URL()
}

// Serve answers requests until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to ShutdownTimeout), and closes
// the store.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	fleetCtx, stopFleet := context.WithCancel(context.Background())
	fleetDone := make(chan struct{})
	go func() { s.fleet.Run(fleetCtx); close(fleetDone) }()
	busDone := make(chan struct{})
	go func() {
		defer close(busDone)
		var wg sync.WaitGroup
		if s.bus != nil {
			wg.Go(func() { s.bus.Run(fleetCtx) })
		}
		if s.sessions != nil {
			wg.Go(func() { s.sessions.Run(fleetCtx) })
		}
		wg.Go(func() { s.events.Run(fleetCtx) })
		if s.cfg.DatabaseURL != "" {
			wg.Go(func() { events.ListenPostgres(fleetCtx, s.cfg.DatabaseURL, s.events, s.log) })
			// The API's reads of runners come from memory while this
			// replica hears the others' changes (sqlstore's runner view).
			if db, ok := s.store.(*sqlstore.DB); ok {
				wg.Go(func() { postgres.ListenRunners(fleetCtx, s.cfg.DatabaseURL, db, s.log) })
			}
		}
		wg.Wait()
	}()
	stopPlacing := s.startPlacing()
	stopPurging := s.startPurging()
	stopPruning := s.startAuditPruning()
	ssoCtx, stopSSO := context.WithCancel(context.Background())
	defer stopSSO()
	s.startSSO(ssoCtx)
	defer stopPruning()
	stopSessionPruning := s.startSessionPruning()
	defer stopSessionPruning()
	stopSweeping := s.startInactivitySweep()
	stopPrebuildSweep := s.startPrebuildSweep()
	defer stopPrebuildSweep()
	stopSSH := s.serveSSH()
	defer stopSSH()
	s.ready.Store(true)
	go func() { errc <- s.http.Serve(s.listener) }()
	s.log.Info("control plane listening", "url", s.URL())
	select {
	case err := <-errc:
		stopPurging()
		stopSweeping()
		stopPlacing()
		stopFleet()
		<-fleetDone
		<-busDone
		s.store.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopPurging()
	stopSweeping()
	stopPlacing()
	s.ready.Store(false)
	stopSSH()
	// Runner streams never end on their own; close them so the shutdown
	// waits only for ordinary requests. The fleet then flushes the renewals
	// it holds before the store closes.
	s.fleet.CloseSessions()
	s.events.Close()
	defer func() { stopFleet(); <-fleetDone; <-busDone }()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.http.Shutdown(sctx)
	if !s.fleet.WaitServed(sctx) {
		s.log.Warn("runner streams still served at the shutdown's deadline")
	}
	stopFleet()
	<-fleetDone
	<-busDone
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	s.log.Info("control plane stopped")
	return nil
}

// placeInterval is how often pending pods are offered to the runners again:
// a runner that connects, frees a place or stops draining gets them within
// about this long.
const placeInterval = time.Second

// startPlacing places pending pods every placeInterval until the returned
// stop is called; stop waits for a pass in progress.
func (s *Server) startPlacing() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(placeInterval)
		defer t.Stop()
		var lastLog time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A database outage would fail every pass: log once a minute.
			if _, err := s.pods.PlacePending(ctx, ""); err != nil && ctx.Err() == nil && time.Since(lastLog) > time.Minute {
				lastLog = time.Now()
				s.log.Warn("place pending pods", "err", err)
			}
		}
	}()
	return func() { cancel(); <-done }
}

// purgeInterval is how often the tombstones of deleted runners past their
// retention are purged: a minute, or the retention when it is shorter (at
// least a second), so that a tombstone outlives its retention by at most
// about that much.
func purgeInterval(retention time.Duration) time.Duration {
	return min(time.Minute, max(retention, time.Second))
}

// startPurging purges expired tombstones of deleted runners every
// purgeInterval until the returned stop is called; stop waits for a purge
// in progress. The fleet's silent-runner sweep works the same way; each
// purge is one indexed DELETE, and replicas sharing PostgreSQL may purge
// the same tombstones without harm.
func (s *Server) startPurging() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	retention := s.cfg.DeletedRunnerRetention
	go func() {
		defer close(done)
		t := time.NewTicker(purgeInterval(retention))
		defer t.Stop()
		var lastLog time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := s.runners.PurgeDeleted(ctx, retention)
			switch {
			case err != nil && ctx.Err() == nil && time.Since(lastLog) > time.Minute:
				// A database outage would fail every pass: log once a minute.
				lastLog = time.Now()
				s.log.Warn("purge deleted runners", "err", err)
			case n > 0:
				s.log.Info("deleted runners purged after their retention", "count", n, "retention", retention)
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if !s.ready.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"starting"}` + "\n"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("health check: database unreachable", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"database unreachable"}` + "\n"))
		return
	}
	w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// LocalRunner returns an exchange token for the runner called name in the
// default organization, creating the runner on first use, acting as the
// bootstrap admin. `runyard up` uses it for its local runner. It returns ""
// when the runner exists and haveCredentials says the daemon can reconnect
// with what it has.
func (s *Server) LocalRunner(ctx context.Context, name string, haveCredentials bool) (runnerID, exchangeToken string, err error) {
	ctx = identity.NewContext(ctx, &identity.Caller{
		OrgID:   s.admin.OrgID,
		Subject: identity.Subject{ID: s.admin.ID, Principal: s.admin.Principal},
		TokenID: s.admin.ID,
		Scopes:  s.admin.Scopes,
	})
	existing, err := s.findRunnerByName(ctx, name)
	if err != nil {
		return "", "", err
	}
	if existing == nil {
		r, x, err := s.runners.Create(ctx, runners.CreateInput{Name: name, Provider: runners.ProviderLinuxHost})
		if err != nil {
			return "", "", fmt.Errorf("create local runner %q: %w", name, err)
		}
		return r.ID, x, nil
	}
	if haveCredentials {
		return existing.ID, "", nil
	}
	x, err := s.runners.CreateToken(ctx, existing.ID)
	if err != nil {
		return "", "", fmt.Errorf("new exchange token for local runner %q: %w", name, err)
	}
	return existing.ID, x, nil
}

func (s *Server) findRunnerByName(ctx context.Context, name string) (*runners.Runner, error) {
	page := paging.Page{Limit: paging.MaxSize}
	for {
		items, next, err := s.runners.List(ctx, runners.ListFilter{}, page)
		if err != nil {
			return nil, fmt.Errorf("find runner %q: %w", name, err)
		}
		for _, r := range items {
			if r.Name == name {
				return r, nil
			}
		}
		if next == "" {
			return nil, nil
		}
		if page, err = paging.Parse(next, paging.MaxSize); err != nil {
			return nil, err
		}
	}
}

// endSessions ends a user's browser sessions (a disabled account, a reset
// password) and, after a reset, lifts their sign-in lockout. It runs after
// the change committed, so a failure is logged, not returned (a disabled
// account's sessions are refused anyway when they next authenticate).
func (s *Server) endSessions(ctx context.Context, userID string, reset bool) {
	if n, err := s.signIns.RevokeUser(ctx, userID); err != nil {
		s.log.ErrorContext(ctx, "end the sessions of a user", "user", userID, "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "sessions ended", "user", userID, "sessions", n)
	}
	if reset {
		if err := s.signIns.ClearLockout(ctx, userID); err != nil {
			s.log.ErrorContext(ctx, "lift the sign-in lockout of a user", "user", userID, "err", err)
		}
	}
}
