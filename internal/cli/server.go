package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/audit"
	"github.com/runyard/runyard/internal/events"
	"github.com/runyard/runyard/internal/identity"
	"github.com/runyard/runyard/internal/manifest"
	"github.com/runyard/runyard/internal/runners"
	"github.com/runyard/runyard/internal/server"
	"github.com/runyard/runyard/internal/sessions"
	"github.com/runyard/runyard/internal/sso"
)

// OIDCClientSecretEnv holds the OpenID client secret when neither the flag
// nor the config file does.
const OIDCClientSecretEnv = "RUNYARD_OIDC_CLIENT_SECRET"

func newServerCmd(g *globals) *cobra.Command {
	var cfg server.Config
	var configFile string
	var oidc struct{ domains, scopes, roleMap, defaultRole string }
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane",
		Long: `Run the control plane. The first start creates organization "default" and an
admin API key: RUNYARD_BOOTSTRAP_TOKEN sets its value; otherwise it is
generated, printed once and written to DATA_DIR/admin-token (mode 0600).
SIGINT and SIGTERM shut the server down gracefully.

--config FILE reads the same settings from a YAML file whose keys are the
long flag names (oidc-issuer: https://..., oidc-allowed-domains: [a.com]);
flags on the command line win over the file.

Single sign-on: --oidc-issuer, --oidc-client-id and --oidc-client-secret (or
RUNYARD_OIDC_CLIENT_SECRET) enable sign-in with an OpenID provider at
/auth/oidc/login; register PUBLIC_URL/auth/oidc/callback at the provider.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configFile != "" {
				if err := applyConfigFile(cmd, configFile); err != nil {
					return err
				}
			}
			if cfg.SSO.ClientSecret == "" && cfg.SSO.Issuer != "" {
				cfg.SSO.ClientSecret = os.Getenv(OIDCClientSecretEnv)
			}
			cfg.SSO.AllowedDomains = sso.ParseList(oidc.domains)
			cfg.SSO.Scopes = sso.ParseList(oidc.scopes)
			roleMap, err := sso.ParseRoleMap("--oidc-role-map", oidc.roleMap)
			if err != nil {
				return usagef("%v", err)
			}
			cfg.SSO.RoleMap = roleMap
			if oidc.defaultRole != sso.NoRole {
				cfg.SSO.DefaultRole = identity.Role(oidc.defaultRole)
			}
			if err := cfg.SSO.Validate(); err != nil {
				return usagef("%v", err)
			}
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
			// The CLI sends DATA_DIR/admin-token to this server only.
			if err := recordAdminTokenServer(cfg.DataDir, s.URL()); err != nil {
				fmt.Fprintf(g.stderr, "runyard: warning: %v; the CLI will not use %s without --token\n", err, filepath.Join(cfg.DataDir, server.AdminTokenFile))
			}
			fmt.Fprintf(g.stdout, "Web console: %s/\n", s.PublicURL())
			if a := s.SSHAddr(); a != "" {
				fmt.Fprintf(g.stdout, "SSH into environments: %s (runyard environments ssh-config)\n", a)
			}
			if u := s.PreviewURL("ENVIRONMENT_ID", 3000); u != "" {
				fmt.Fprintf(g.stdout, "Preview URLs: %s (port 3000 of an environment that lists it in spec.ports)\n", u)
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
	f.StringVar(&cfg.PublicURL, "public-url", "", "the URL clients and runners reach this control plane at, put in log URLs and runners' Kubernetes manifests (default: the listen address; manifests need one that is not loopback)")
	f.StringVar(&cfg.ReleasePublicKey, "release-public-key", "", "the public key (PEM, release-public-key.pem) that runner releases published here must be signed with; default: publishing is refused")
	f.StringVar(&cfg.RunnerImage, "runner-image", "", "the image of runners' Kubernetes manifests (default: "+manifest.ImageRepository+" tagged with this version)")
	f.StringVar(&cfg.RunnerStreams, "runner-streams", server.RunnerStreamsAuto, "where runners hold their streams: connection (each on a connection of its own, about 17 KiB of memory per runner), http2 (Connect streams, about 100 KiB, which keep a runner's terminals on the replica holding its stream behind a load balancer), or auto: connection on SQLite, http2 on PostgreSQL")
	f.StringVar(&cfg.AdvertiseURL, "advertise-url", "", "with PostgreSQL: the URL the other replicas reach this one at, to relay pod terminals and logs (default: the listen address)")
	f.StringVar(&cfg.SSHListen, "ssh-listen", "", "address of the SSH server into environments (e.g. :2222): ssh ENVIRONMENT_ID@host -p PORT with a key of the environment's spec.sshPublicKeys; default: no SSH server")
	f.StringVar(&cfg.PreviewDomain, "preview-domain", "", "serve the ports environments list (spec.ports) at PORT--ENVIRONMENT_ID.DOMAIN; DOMAIN is the host browsers use, e.g. preview.example.com (wildcard DNS to this server) or localhost (*.localhost needs no DNS), with a port when they use another than --public-url's; default: no preview URLs")
	f.StringVar(&cfg.TrustedProxies, "trusted-proxies", "",
		"comma-separated proxy addresses or CIDR prefixes whose X-Forwarded-For names the client (audit log, rate limits); default: none, the direct peer is the client")
	f.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown waits for requests in flight")
	f.StringVar(&configFile, "config", "", "YAML file of settings keyed by the long flag names; flags win over it")
	f.StringVar(&cfg.SSO.Issuer, "oidc-issuer", "", "OpenID provider's issuer URL: enables single sign-on at /auth/oidc/login")
	f.StringVar(&cfg.SSO.ClientID, "oidc-client-id", "", "client id registered at the OpenID provider")
	f.StringVar(&cfg.SSO.ClientSecret, "oidc-client-secret", "", "client secret registered at the OpenID provider (better: env "+OIDCClientSecretEnv+" or the config file)")
	f.StringVar(&oidc.domains, "oidc-allowed-domains", "", "comma-separated email domains that may sign in (default: any)")
	f.StringVar(&oidc.scopes, "oidc-scopes", "openid,email,profile", "comma-separated scopes asked of the OpenID provider")
	f.StringVar(&cfg.SSO.RoleClaim, "oidc-role-claim", "", "ID token claim (a string or a list) whose values --oidc-role-map maps to roles")
	f.StringVar(&oidc.roleMap, "oidc-role-map", "", "comma-separated claim-value=role pairs; the first pair whose value the claim carries decides")
	f.StringVar(&oidc.defaultRole, "oidc-default-role", string(identity.RoleMember), "role of a new user whose role claim maps to no role ('none': refuse the sign-in)")
	f.StringVar(&cfg.SSO.Organization, "oidc-organization", identity.DefaultOrganization, "organization that users signing in for the first time join")
	return cmd
}
