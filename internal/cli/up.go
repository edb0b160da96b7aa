package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/server"
)

func newUpCmd(g *globals) *cobra.Command {
	cfg := server.Config{}
	var maxPods int
	var stopGrace time.Duration
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a control plane and a local runner in one command",
		Long: `Run a control plane on SQLite in --data-dir and one runner on this host,
named after it. A second "runyard up" on the same directory reuses the same
runner. Ctrl-C stops both.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cfg.BootstrapToken = os.Getenv("RUNYARD_BOOTSTRAP_TOKEN")
			cfg.Stdout = g.stdout
			level := new(slog.LevelVar)
			logger := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
			cfg.Logger = logger.With("component", "control-plane")
			srv, err := server.Open(ctx, cfg)
			if err != nil {
				return err
			}
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			served := make(chan error, 1)
			go func() { served <- srv.Serve(sctx) }()
			abort := func(err error) error {
				stop()
				return errors.Join(err, <-served)
			}

			// The admin key in DATA_DIR belongs to this server only, and
			// the "local" context points at it.
			if err := recordAdminTokenServer(cfg.DataDir, srv.URL()); err != nil {
				logger.Warn("the CLI will not use the admin key of "+cfg.DataDir+" without --token", "err", err)
			}
			if err := saveLocalContext(srv.URL(), cfg.DataDir, cfg.BootstrapToken); err != nil {
				logger.Warn("could not add the local context", "err", err)
			}

			name := localRunnerName()
			stateDir := filepath.Join(cfg.DataDir, "runner")
			_, statErr := os.Stat(filepath.Join(stateDir, "credentials.json"))
			_, exchange, err := srv.LocalRunner(ctx, name, statErr == nil)
			if err != nil {
				return abort(err)
			}
			d, err := runner.New(ctx, runner.Config{
				Server: srv.URL(), ExchangeToken: exchange, StateDir: stateDir, Name: name, MaxPods: maxPods,
				StopGrace: stopGrace, Version: buildinfo.Version(), Logger: logger.With("component", "runner"), Level: level,
			})
			if err != nil {
				return abort(err)
			}
			defer d.Close()
			ran := make(chan error, 1)
			go func() { ran <- d.Run(ctx) }()

			tokenHint := "the admin API key is in " + filepath.Join(cfg.DataDir, server.AdminTokenFile)
			if cfg.BootstrapToken != "" {
				tokenHint = "the admin API key is the value of RUNYARD_BOOTSTRAP_TOKEN"
			}
			fmt.Fprintf(g.stdout, "runyard is up: control plane at %s with local runner %q.\nWeb console: %s/ (sign in with the admin API key).\n%s.\nNext, in another terminal in this directory:\n\n  runyard runners list --server %s\n\nPress Ctrl-C to stop.\n",
				srv.URL(), name, srv.PublicURL(), tokenHint, srv.URL())
			if a := srv.SSHAddr(); a != "" {
				fmt.Fprintf(g.stdout, "SSH into environments: %s (runyard environments ssh-config)\n", a)
			}
			if u := srv.PreviewURL("ENVIRONMENT_ID", 3000); u != "" {
				fmt.Fprintf(g.stdout, "Preview URLs: %s (port 3000 of an environment that lists it in spec.ports)\n", u)
			}

			select {
			case err := <-ran:
				// The runner ended on its own (deleted, or refused): keep
				// the control plane serving; it is still useful.
				if err != nil && !errors.Is(err, runner.ErrDeleted) {
					logger.Error("the local runner stopped", "err", err)
				} else if err != nil {
					logger.Info("the local runner was deleted")
				}
				return <-served
			case err := <-served:
				<-ran
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address of the control plane")
	f.StringVar(&cfg.DataDir, "data-dir", ".runyard", "directory for the database, the admin token and the runner's state")
	f.StringVar(&cfg.SSHListen, "ssh-listen", "", "address of the SSH server into environments (e.g. :2222); default: none")
	f.StringVar(&cfg.PreviewDomain, "preview-domain", "", "serve environments' ports (spec.ports) at PORT--ENVIRONMENT_ID.DOMAIN:PORT, e.g. localhost (*.localhost needs no DNS; the console stays at 127.0.0.1, another site); default: none")
	f.IntVar(&maxPods, "max-pods", 10, "how many agent pods the local runner takes at once")
	f.DurationVar(&stopGrace, "stop-grace", 2*time.Minute, "how long a stopped pod has between SIGTERM and SIGKILL")
	f.DurationVar(&cfg.RunnerTimeout, "runner-timeout", 30*time.Second, "a runner that does not renew within this is INACTIVE")
	f.DurationVar(&cfg.LostAfter, "lost-after", runners.DefaultLostAfter, "how long an unreachable runner keeps its work before it is failed")
	return cmd
}

// localRunnerName is the host name, made a valid runner name.
func localRunnerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "local"
	}
	if runners.ValidateName("name", host) != nil {
		host += "-runner"
	}
	if runners.ValidateName("name", host) != nil {
		return "local-runner"
	}
	return host
}

// saveLocalContext adds or updates the context "local": this server with
// its admin key. It becomes the current context only when there is none, so
// that `up` never moves a user off a server they chose.
func saveLocalContext(srv, dataDir, bootstrapToken string) error {
	token := bootstrapToken
	if token == "" {
		b, err := os.ReadFile(filepath.Join(dataDir, server.AdminTokenFile))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("read the admin key: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	cfg, path, err := loadConfig()
	if err != nil {
		return err
	}
	local := cliContext{Name: "local", Server: srv, Token: token}
	if old := cfg.find("local"); old != nil {
		deleteContextKey(old)
	}
	storeContextKey(&local, path)
	cfg.upsert(local)
	if cfg.CurrentContext == "" || cfg.find(cfg.CurrentContext) == nil {
		cfg.CurrentContext = "local"
	}
	return cfg.save(path)
}
