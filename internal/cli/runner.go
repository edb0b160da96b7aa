package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/release"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/sdnotify"
)

func newRunnerCmd(g *globals) *cobra.Command {
	cfg := runner.Config{}
	var releaseKey string
	cmd := &cobra.Command{
		Use:   "runner",
		Short: "Run the runner daemon that makes this host a runner",
		Long: `Run the runner daemon. The first start exchanges the one-time token from
"runyard runners create" and keeps the runner's credentials and key pair in
--state-dir; later starts need only --state-dir (and --server if it moved).
The daemon reconnects on its own when the control plane goes away, and stops
when the runner is deleted (exit 0) or its credentials are refused.`,
		Example: `  runyard runner --server http://cp:8080 --exchange-token ryd_ex_... --state-dir /var/lib/runyard-runner
  runyard runner --state-dir /var/lib/runyard-runner`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("server") && !cmd.Flags().Changed("exchange-token") {
				// Later starts take the server from the state dir unless
				// told otherwise (RUNYARD_SERVER included).
				cfg.Server = envOr("RUNYARD_SERVER", "")
			} else {
				cfg.Server = g.daemonServer()
			}
			// --ca-file and --insecure-skip-verify, which every command
			// takes, apply to the daemon's connection too: without them it
			// could not reach a control plane whose certificate is of its
			// own CA.
			tc, err := tlsConfig(g.caFile, g.insecure)
			if err != nil {
				return err
			}
			cfg.TLS = tc
			cfg.Version = buildinfo.Version()
			cfg.Level = new(slog.LevelVar)
			cfg.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: cfg.Level}))
			// Under systemd's Type=notify unit (install-service). Taken out
			// of the environment: the daemon's children are not to speak
			// for the unit; the guard and the next binary get it back.
			notify, err := sdnotify.Take()
			if err != nil {
				cfg.Logger.Warn("not telling the service manager", "err", err)
			}
			cfg.Notify = notify
			if releaseKey != "" {
				b, err := os.ReadFile(releaseKey)
				if err != nil {
					return fmt.Errorf("--release-public-key: %w", err)
				}
				if cfg.ReleasePublicKey, err = release.ParsePublicKey(b); err != nil {
					return fmt.Errorf("--release-public-key %s: %w", releaseKey, err)
				}
			}
			d, err := runner.New(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			defer d.Close()
			err = d.Run(cmd.Context())
			if errors.Is(err, runner.ErrRestart) {
				// The same process (PID) runs the new binary, which
				// re-adopts the services and pods.
				d.Close()
				exe := d.Executable()
				return fmt.Errorf("exec %s: %w", exe, syscall.Exec(exe, os.Args, append(os.Environ(), notify.Env()...)))
			}
			if errors.Is(err, runner.ErrDeleted) {
				fmt.Fprintln(g.stdout, "The runner was deleted: it stopped its work and removed its credentials.")
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ExchangeToken, "exchange-token", "", "one-time token from `runyard runners create` (first start only)")
	f.StringVar(&cfg.StateDir, "state-dir", "runner-state", "directory for the runner's credentials and key pair")
	f.StringVar(&cfg.Name, "name", "", "host name to report (default: the machine's)")
	f.StringSliceVar(&cfg.Labels, "labels", nil, "labels for scheduling, e.g. gpu,high-memory")
	f.IntVar(&cfg.MaxPods, "max-pods", 10, "how many agent pods this runner takes at once")
	f.StringVar(&cfg.Region, "region", "", "region to report")
	f.DurationVar(&cfg.StopGrace, "stop-grace", 2*time.Minute, "how long a stopped pod has between SIGTERM and SIGKILL")
	f.StringVar(&cfg.HealthAddr, "health-addr", "", "serve /healthz, /readyz and /metrics on this address, e.g. :8081 (default: off)")
	f.DurationVar(&cfg.MetricsInterval, "metrics-interval", runner.DefaultMetricsInterval, "how often to push metrics when spec.configuration.metrics asks for it")
	f.StringVar(&releaseKey, "release-public-key", "", "the release public key (PEM) an update must be signed with; without it the runner does not update itself")
	f.DurationVar(&cfg.UpdateRollbackAfter, "update-rollback-after", runner.DefaultUpdateRollbackAfter, "how long an updated binary has to reach the control plane before the previous one is put back")
	cmd.AddCommand(newRunnerInstallServiceCmd(g), newRunnerUpdateGuardCmd(g))
	return cmd
}

// newRunnerUpdateGuardCmd is started by the runner itself just before it
// execs an updated binary (internal/runner/updateguard.go); it is hidden.
func newRunnerUpdateGuardCmd(g *globals) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:     "update-guard",
		Short:   "Roll an updated runner back if it does not reach the control plane (started by the runner)",
		Hidden:  true,
		Example: `  runyard runner update-guard --state-dir /var/lib/runyard-runner`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(g.stderr, nil)).With("part", "update-guard")
			notify, err := sdnotify.Take()
			if err != nil {
				log.Warn("not telling the service manager", "err", err)
			}
			return runner.Guard(cmd.Context(), stateDir, log, notify)
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "runner-state", "the runner's state directory")
	return cmd
}
