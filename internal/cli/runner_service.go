package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runyard/runyard/internal/apperr"
	"github.com/runyard/runyard/internal/buildinfo"
	"github.com/runyard/runyard/internal/runner"
	"github.com/runyard/runyard/internal/systemd"
)

// newRunnerInstallServiceCmd is `runyard runner install-service`. The unit
// never holds the exchange token: with --exchange-token this command spends
// it itself, once, and the state directory keeps the credentials it buys, so
// the service starts with --state-dir alone on every boot.
func newRunnerInstallServiceCmd(g *globals) *cobra.Command {
	var (
		stateDir, unitName, unitDir, user, exchange string
		name, region                                string
		labels                                      []string
		maxPods                                     int
		printOnly, force                            bool
	)
	cmd := &cobra.Command{
		Use:   "install-service",
		Short: "Write a systemd unit that runs this host's runner as a service",
		Long: `Write a systemd unit that runs "runyard runner --state-dir DIR" as a service,
started at boot and restarted after a crash. The unit holds no secret: the
runner's credentials are in the state directory. Either the state directory
already holds them (from an earlier "runyard runner --exchange-token ..."), or
pass --exchange-token here and this command exchanges it once before writing
the unit.

The unit is Type=notify: "systemctl start" returns once the runner reached
the control plane (or found it down and keeps trying on its own), and
"systemctl status" shows the runner's status line (connected or not, its
self-update). An update, and a rollback, keep the unit active with the daemon
as its main process.

The unit runs the binary at this command's own path. It does not run
systemctl: it prints the commands that enable and start the service. --print
prints the unit and changes nothing.`,
		Example: `  sudo runyard runner install-service --server http://cp:8080 --exchange-token ryd_ex_... --state-dir /var/lib/runyard-runner
  runyard runner install-service --state-dir /var/lib/runyard-runner --print`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			flags := cmd.Flags()
			if printOnly && exchange != "" {
				return usagef("--print writes nothing, and would waste the one-time --exchange-token: drop one of them")
			}
			file, err := systemd.FileName(unitName)
			if err != nil {
				return usagef("--unit-name: %v", err)
			}
			dir, err := filepath.Abs(stateDir)
			if err != nil {
				return fmt.Errorf("--state-dir: %w", err)
			}
			bin, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the runyard binary: %w", err)
			}
			unit := systemd.RunnerUnit{Binary: bin, StateDir: dir, User: user}
			// The unit names the server only when told to; otherwise the
			// runner uses the one its state directory remembers, which
			// stays right if the flag's default or RUNYARD_SERVER changes.
			if flags.Changed("server") {
				unit.Server = strings.TrimRight(g.daemonServer(), "/")
			}
			if flags.Changed("name") {
				unit.Args = append(unit.Args, "--name", name)
			}
			if flags.Changed("labels") {
				unit.Args = append(unit.Args, "--labels", strings.Join(labels, ","))
			}
			if flags.Changed("max-pods") {
				unit.Args = append(unit.Args, "--max-pods", strconv.Itoa(maxPods))
			}
			if flags.Changed("region") {
				unit.Args = append(unit.Args, "--region", region)
			}
			// The service reaches the control plane as this command does.
			if g.caFile != "" {
				ca, err := filepath.Abs(g.caFile)
				if err != nil {
					return fmt.Errorf("--ca-file: %w", err)
				}
				unit.Args = append(unit.Args, "--ca-file", ca)
			}
			if g.insecure {
				unit.Args = append(unit.Args, "--insecure-skip-verify")
			}
			text, err := unit.Render()
			if err != nil {
				return usagef("%v", err)
			}
			if printOnly {
				_, err := g.stdout.Write(text)
				return err
			}
			path := filepath.Join(unitDir, file)
			if err := writeUnit(path, text, force, func() error {
				if exchange == "" {
					// The check up.go makes: a state dir with credentials
					// starts a runner without a token.
					if _, err := os.Stat(filepath.Join(dir, "credentials.json")); err != nil {
						return apperr.FailedPrecondition("state dir %s holds no credentials: pass --exchange-token (from `runyard runners create` or `runyard runners token ID`)", dir)
					}
					return nil
				}
				return exchangeToken(cmd, g, dir, exchange)
			}); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Wrote %s.\nNext, as root:\n\n", path)
			if user != "root" && user != "0" {
				fmt.Fprintf(g.stdout, "  chown -R %s: %s\n", user, dir)
			}
			svc := strings.TrimSuffix(file, ".service")
			fmt.Fprintf(g.stdout, "  systemctl daemon-reload && systemctl enable --now %s\n\nThen follow its log with: journalctl -u %s -f\n", svc, svc)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", "", "the runner's state directory (required); the service may write only there")
	f.StringVar(&exchange, "exchange-token", "", "exchange this one-time token now, so that the state dir holds credentials (never written into the unit)")
	f.StringVar(&unitName, "unit-name", systemd.DefaultUnitName, "name of the systemd unit")
	f.StringVar(&unitDir, "unit-dir", systemd.DefaultUnitDir, "directory to write the unit into")
	f.StringVar(&user, "user", "root", "user the service runs as; it must own --state-dir")
	f.BoolVar(&printOnly, "print", false, "print the unit instead of writing it")
	f.BoolVar(&force, "force", false, "overwrite an existing unit")
	f.StringVar(&name, "name", "", "host name the runner reports (default: the machine's)")
	f.StringSliceVar(&labels, "labels", nil, "labels the runner reports, e.g. gpu,high-memory")
	f.IntVar(&maxPods, "max-pods", 10, "how many agent pods the runner takes at once")
	f.StringVar(&region, "region", "", "region the runner reports")
	cmd.MarkFlagRequired("state-dir")
	return cmd
}

// writeUnit writes text to path, calling prepare once the unit is known to be
// writable and before it takes its place. The unit goes to a temporary file
// first, so that an unwritable directory or an existing unit fails before
// prepare spends a one-time token, and a failing prepare leaves no unit.
// Without force, a link takes the place atomically and never replaces a unit
// written meanwhile.
func writeUnit(path string, text []byte, force bool, prepare func() error) error {
	if _, err := os.Stat(path); err == nil && !force {
		return apperr.Conflict("%s exists: pass --force to overwrite it", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create unit dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write unit: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(text)
	if err == nil {
		// CreateTemp makes mode 0600; systemd and tools run as users read
		// units, and the unit holds no secret.
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write unit: %w", err)
	}
	if err := prepare(); err != nil {
		return err
	}
	if force {
		if err := os.Rename(tmp.Name(), path); err != nil {
			return fmt.Errorf("write unit: %w", err)
		}
		return nil
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return apperr.Conflict("%s exists: pass --force to overwrite it", path)
		}
		return fmt.Errorf("write unit: %w", err)
	}
	return nil
}

// exchangeToken registers the runner in dir as its first start would, and
// stops there: the service makes the later starts.
func exchangeToken(cmd *cobra.Command, g *globals, dir, token string) error {
	tc, err := tlsConfig(g.caFile, g.insecure)
	if err != nil {
		return err
	}
	d, err := runner.New(cmd.Context(), runner.Config{
		Server:        g.daemonServer(),
		TLS:           tc,
		ExchangeToken: token,
		StateDir:      dir,
		Version:       buildinfo.Version(),
		Logger:        slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	d.Close()
	return nil
}
