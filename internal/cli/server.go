package cli

import (
	"github.com/runyard/runyard/internal/audit"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/sessions"
)

func newServerCmd(g *globals) *cobra.Command {
	var cfg server.Config
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane",
		Long: `Run the control plane. The first start creates organization "default" and an
admin API key: RUNYARD_BOOTSTRAP_TOKEN sets its value; otherwise it is
generated, printed once and written to DATA_DIR/admin-token (mode 0600).
SIGINT and SIGTERM shut the server down gracefully.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.BootstrapToken = os.Getenv("RUNYARD_BOOTSTRAP_TOKEN")
			cfg.Stdout = g.stdout
			// In the server's configuration zero means the default; on the
			// command line it would read as "purge at once" and silently
			// mean a day.
			if cmd.Flags().Changed("deleted-runner-retention") && cfg.DeletedRunnerRetention == 0 {
				return usagef("--deleted-runner-retention must be positive (a deleted runner stays readable that long)")
			}
			if cmd.Flags().Changed("lost-after") && cfg.LostAfter <= 0 {
				return usagef("--lost-after must be positive (how long an unreachable runner keeps its work)")
			}
			if cmd.Flags().Changed("audit-retention") && cfg.AuditRetention <= 0 {
				return usagef("--audit-retention must be positive (how long the audit log keeps entries)")
			}
			if cmd.Flags().Changed("event-retention") && cfg.EventRetention <= 0 {
				return usagef("--event-retention must be positive (how long WatchEvents can resume from a cursor)")
			}
			for flag, v := range map[string]time.Duration{"session-idle-timeout": cfg.SessionIdleTimeout, "session-max-age": cfg.SessionMaxAge} {
				if cmd.Flags().Changed(flag) && v <= 0 {
					return usagef("--%s must be positive, got %s", flag, v)
				}
			}
			if err := sessions.ValidateTimeouts(cfg.SessionIdleTimeout, cfg.SessionMaxAge); err != nil {
				return usagef("%s", err.Error())
			}
			s, err := server.Open(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return s.Serve(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:8080", "address to listen on")
	f.StringVar(&cfg.DataDir, "data-dir", ".runyard", "directory for the SQLite database and the admin token")
	f.StringVar(&cfg.DatabaseURL, "database", "", "PostgreSQL URL (postgres://...); default: SQLite in --data-dir")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM); without it the server speaks h2c")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.DurationVar(&cfg.RunnerTimeout, "runner-timeout", 30*time.Second, "a runner that does not renew within this is INACTIVE; runners renew every third of it")
	f.DurationVar(&cfg.LostAfter, "lost-after", runners.DefaultLostAfter,
		"how long an unreachable (INACTIVE) runner keeps its pods, services and task executions; after it they are failed, and the runner stops them if it comes back")
	f.DurationVar(&cfg.DeletedRunnerRetention, "deleted-runner-retention", runners.DefaultDeletedRetention,
		"how long a deleted runner stays readable (phase DELETED) before it is purged")
	f.DurationVar(&cfg.EventRetention, "event-retention", events.DefaultRetention,
		"how long the change feed keeps events: a WatchEvents watcher can resume from a cursor that recent")
	f.DurationVar(&cfg.AuditRetention, "audit-retention", audit.DefaultRetention,
		"how long the audit log keeps entries; older ones are pruned")
	f.DurationVar(&cfg.SessionIdleTimeout, "session-idle-timeout", sessions.DefaultIdleTimeout,
		"a console sign-in (browser session) unused for this long ends")
	f.DurationVar(&cfg.SessionMaxAge, "session-max-age", sessions.DefaultMaxAge,
		"a console sign-in ends this long after it began, however much it is used")
	f.StringVar(&cfg.PublicURL, "public-url", "", "the URL clients reach this control plane at, put in log URLs (default: the listen address)")
	f.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "with PostgreSQL: the URL the other replicas reach this one at, to relay pod terminals and logs (default: the listen address)")
	f.StringVar(&cfg.TrustedProxies, "trusted-proxies", "",
		"comma-separated proxy addresses or CIDR prefixes whose X-Forwarded-For names the client (audit log, rate limits); default: none, the direct peer is the client")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown waits for requests in flight")
	return cmd
}
