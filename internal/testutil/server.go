package testutil

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
	"github.com/runyard/runyard/internal/store"
	"github.com/runyard/runyard/internal/store/postgres"
	"github.com/runyard/runyard/internal/store/sqlite"
)

// AdminToken is the bootstrap admin key of servers started by StartServer.
const AdminToken = "ryd_test_admin_token_0123456789"

// Backend selects the database of a test server.
type Backend string

const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists the backends to run a test against: SQLite always,
// PostgreSQL when RUNYARD_TEST_POSTGRES_URL is set.
func Backends() []Backend { return []Backend{SQLite, Postgres} }

// TestServer is a control plane serving on a loopback port for one test.
type TestServer struct {
	URL     string
	DataDir string
	Server  *server.Server
	// databaseURL is the server's PostgreSQL schema; empty for SQLite.
	databaseURL string
	stop        func()
}

// Stop shuts the server down now (a restart: start another on its
// DataDir or DatabaseURL); the test's end does it otherwise.
func (ts *TestServer) Stop() { ts.stop() }

// Options change a test server.
type Options struct {
	// RunnerTimeout is the server's --runner-timeout; zero is the default.
	RunnerTimeout time.Duration
	// LostAfter is the server's --lost-after; zero is the default.
	LostAfter time.Duration
	// Logger, when set, receives the server's log; by default it is
	// discarded.
	Logger *slog.Logger
	// DatabaseURL, with the Postgres backend, makes the server a replica
	// sharing another test server's database (TestServer.DatabaseURL)
	// instead of one in a schema of its own.
	DatabaseURL string
	// ReadTimeout is the server's read timeout; zero is the default.
	ReadTimeout time.Duration
	// InactivitySweep is how often the server stops inactive environments;
	// zero is the default.
	InactivitySweep time.Duration
	// PrebuildKeep is the server's snapshot retention per repository and
	// branch (server.Config.PrebuildKeep).
	PrebuildKeep int
	// PrebuildSweep is server.Config.PrebuildSweep.
	PrebuildSweep time.Duration
	// TrustedProxies is the server's --trusted-proxies.
	TrustedProxies string
	// PublicURL is the server's --public-url.
	PublicURL string
	// SSO is the server's single sign-on (--oidc-*); off by default.
	SSO sso.Config
	// DataDir, when set, is the server's data directory (a SQLite server
	// started again on another's database); by default a fresh one.
	DataDir string
	// SessionIdleTimeout, SessionMaxAge and SignInLimits are the browser
	// sessions' settings; zero values are the defaults.
	SessionIdleTimeout time.Duration
	SessionMaxAge      time.Duration
	SignInLimits       sessions.Limits
	// LogsOnStreams is server.Config.LogsOnStreams: runners send logs on
	// Terminal streams, not on connections of their own.
	LogsOnStreams bool
	// RunnerStreams is server.Config.RunnerStreams (--runner-streams).
	RunnerStreams string
}

// StartServer starts a control plane on 127.0.0.1 with its admin key set to
// AdminToken, and stops it when the test ends. On Postgres it skips the test
// unless RUNYARD_TEST_POSTGRES_URL is set.
func StartServer(tb testing.TB, backend Backend) *TestServer {
	tb.Helper()
	return StartServerWith(tb, backend, Options{})
}

// StartServerWith is StartServer with options.
func StartServerWith(tb testing.TB, backend Backend, opts Options) *TestServer {
	tb.Helper()
	cfg := server.Config{
		Listen:          "127.0.0.1:0",
		DataDir:         tb.TempDir(),
		BootstrapToken:  AdminToken,
		ShutdownTimeout: 5 * time.Second,
		RunnerTimeout:   opts.RunnerTimeout,
		LostAfter:       opts.LostAfter,
		ReadTimeout:     opts.ReadTimeout,
		InactivitySweep: opts.InactivitySweep,
		PrebuildKeep:    opts.PrebuildKeep,
		PrebuildSweep:   opts.PrebuildSweep,
		LogsOnStreams:   opts.LogsOnStreams,
		RunnerStreams:   opts.RunnerStreams,
		TrustedProxies:  opts.TrustedProxies,
		PublicURL:       opts.PublicURL,
		SSO:             opts.SSO,
		Logger:          opts.Logger,

		SessionIdleTimeout: opts.SessionIdleTimeout,
		SessionMaxAge:      opts.SessionMaxAge,
		SignInLimits:       opts.SignInLimits,
	}
	if opts.DataDir != "" {
		cfg.DataDir = opts.DataDir
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if backend == Postgres {
		cfg.DatabaseURL = opts.DatabaseURL
		if cfg.DatabaseURL == "" {
			cfg.DatabaseURL = PostgresURL(tb)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg)
	if err != nil {
		cancel()
		tb.Fatalf("start server: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				tb.Errorf("server shutdown: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	ts := &TestServer{URL: s.URL(), DataDir: cfg.DataDir, Server: s, databaseURL: cfg.DatabaseURL, stop: stop}
	waitHealthy(tb, ts.URL)
	return ts
}

// DatabaseURL is the server's PostgreSQL database (its schema in the URL),
// empty for SQLite.
func (ts *TestServer) DatabaseURL() string { return ts.databaseURL }

// OpenStore opens a second handle on the server's database, for tests that
// arrange what the API cannot (another organization, expired keys, pods). It
// is closed when the test ends.
func (ts *TestServer) OpenStore(tb testing.TB) store.Store {
	tb.Helper()
	var st store.Store
	var err error
	if ts.databaseURL != "" {
		st, err = postgres.Open(context.Background(), ts.databaseURL)
	} else {
		st, err = sqlite.Open(context.Background(), filepath.Join(ts.DataDir, "runyard.db"))
	}
	if err != nil {
		tb.Fatalf("open the server's store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

func waitHealthy(tb testing.TB, url string) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("server at %s did not become healthy", url)
}
