// Command faults injects faults into a real control plane and real runners
// under load, and counts what users would lose. It runs `runyard server` and
// two `runyard runner` processes of the built binary, one of them in a
// network namespace joined to the host by a veth pair (the control plane
// listens on the pair's host address), and keeps a load of writes going:
// API-created services that are started and run on, tasks started once
// each, and agent pods. Meanwhile it
//
//   - SIGKILLs the control plane --cp-kills times and starts it again on the
//     same address and database, timing each runner's reconnect from the
//     moment the new control plane is healthy (/healthz) to the runner's
//     /readyz;
//   - SIGKILLs a runner --runner-kills times (the two in turn) and starts it
//     again on the same state dir: its work lives on under process holders
//     and is adopted;
//   - cuts the namespaced runner off for --partition (link down), longer
//     than --runner-timeout, and heals it.
//
// Every task step, service start and agent command appends its own id (a
// service also its pid) to one file, so that starts can be counted. At the
// end it prints acknowledged writes, lost writes (acknowledged but absent
// or undone afterwards), duplicate starts, needless service restarts (a
// service that started again or whose process is gone, though nobody asked),
// and the reconnect times (p50/max) beside the same run's baseline: a bare
// TCP connect to the control plane. It runs on SQLite, then on PostgreSQL
// when --postgres (default $RUNYARD_TEST_POSTGRES_URL) names a server, in a
// fresh schema dropped at the end. Traffic stays on this machine (loopback
// and the veth pair); it needs root for the namespace (--partition 0 skips
// it). It exits 1 when a target is missed: 0 lost, 0 duplicate, 0 needless
// restarts, 0 acknowledged starts that never ran, reconnect max under 1 s.
//
//	go run ./bench/faults                    # full: 20 + 5 kills, 60 s partition
//	go run ./bench/faults --quick            # 4 + 2 kills, 10 s partition
//	go run ./bench/faults --bin /tmp/runyard --only sqlite
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/runyard/runyard/bench/internal/report"
	"github.com/runyard/runyard/internal/runner/holder"
)

// postgresEnv is the variable the tests use for PostgreSQL.
const postgresEnv = "RUNYARD_TEST_POSTGRES_URL"

type config struct {
	bin           string
	cpKills       int
	runnerKills   int
	partition     time.Duration
	runnerTimeout time.Duration
	loadEvery     time.Duration
	services      int
	between       time.Duration
	postgres      string
	only          string
	keep          bool
	timeout       time.Duration
}

func main() {
	var cfg config
	quick := flag.Bool("quick", false, "a short run to iterate: 4 control-plane kills, 2 runner kills, a 10s partition (flags given explicitly win)")
	flag.StringVar(&cfg.bin, "bin", "", "runyard binary to run (default: go build ./cmd/runyard)")
	flag.IntVar(&cfg.cpKills, "cp-kills", 20, "control-plane SIGKILLs")
	flag.IntVar(&cfg.runnerKills, "runner-kills", 5, "runner SIGKILLs (the two runners in turn)")
	flag.DurationVar(&cfg.partition, "partition", 60*time.Second, "how long the namespaced runner is cut off (0: no partition, no namespace)")
	flag.DurationVar(&cfg.runnerTimeout, "runner-timeout", 10*time.Second, "the control plane's --runner-timeout (the partition should outlast it)")
	flag.DurationVar(&cfg.loadEvery, "load-every", 250*time.Millisecond, "one load operation (a service, a task or a pod) this often")
	flag.IntVar(&cfg.services, "services", 8, "API-created services started under load (they run to the end)")
	flag.DurationVar(&cfg.between, "between", 1500*time.Millisecond, "load between two faults")
	flag.StringVar(&cfg.postgres, "postgres", os.Getenv(postgresEnv), "PostgreSQL URL for a second run in a fresh schema (default $"+postgresEnv+")")
	flag.StringVar(&cfg.only, "only", "", "run one database only: sqlite or postgres")
	flag.BoolVar(&cfg.keep, "keep", false, "keep the run's directory (logs, state dirs) and say where")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up after this long")
	short := report.Short()
	flag.Parse()
	if *short {
		// One fault of each kind but the partition (which needs root and
		// outlasts the runner timeout), with little load between.
		cfg.cpKills, cfg.runnerKills, cfg.partition, cfg.services, cfg.between = 1, 1, 0, 2, 500*time.Millisecond
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["cp-kills"] {
			cfg.cpKills = 4
		}
		if !set["runner-kills"] {
			cfg.runnerKills = 2
		}
		if !set["partition"] {
			cfg.partition = 10 * time.Second
		}
		if !set["runner-timeout"] {
			cfg.runnerTimeout = 4 * time.Second
		}
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if cfg.only != "" && cfg.only != "sqlite" && cfg.only != "postgres" {
		return fmt.Errorf("--only %q: want sqlite or postgres", cfg.only)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "runyard-bench-faults-")
	if err != nil {
		return err
	}
	defer func() {
		// Work outlives its runners under holders by design: end it.
		holder.KillUnder(dir)
		if cfg.keep {
			fmt.Println("# kept", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	if cfg.bin == "" {
		if cfg.bin, err = report.RunyardBinary(dir); err != nil {
			return err
		}
	}
	fmt.Printf("# %d control-plane SIGKILLs, %d runner SIGKILLs, partition %v (runner timeout %v), one load operation every %v\n",
		cfg.cpKills, cfg.runnerKills, cfg.partition, cfg.runnerTimeout, cfg.loadEvery)
	var failed, slow []string
	if cfg.only != "postgres" {
		r, err := runOne(ctx, cfg, filepath.Join(dir, "sqlite"), "", 40)
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		failed = append(failed, r.missed("sqlite")...)
		slow = append(slow, r.slow("sqlite")...)
	}
	if cfg.only != "sqlite" {
		if cfg.postgres == "" {
			fmt.Printf("# postgres: skipped (set --postgres or $%s)\n", postgresEnv)
		} else {
			r, err := runPostgres(ctx, cfg, filepath.Join(dir, "postgres"))
			if err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			failed = append(failed, r.missed("postgres")...)
			slow = append(slow, r.slow("postgres")...)
		}
	}
	if len(failed) > 0 {
		return errors.New("targets missed: " + strings.Join(failed, "; "))
	}
	if len(slow) > 0 {
		// A time missed is the machine's load as much as runyard's: it
		// exits apart from a lost or duplicated write.
		fmt.Fprintln(os.Stderr, "faults: targets missed: "+strings.Join(slow, "; "))
		os.Exit(report.ExitMissed)
	}
	return nil
}

// runPostgres runs in a fresh schema that it drops afterwards.
func runPostgres(ctx context.Context, cfg config, dir string) (*result, error) {
	admin, err := sql.Open("pgx", cfg.postgres)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	defer admin.Close()
	schema := "faults_" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(dctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "faults: drop schema %s: %v\n", schema, err)
		}
	}()
	u, err := url.Parse(cfg.postgres)
	if err != nil {
		return nil, fmt.Errorf("parse the postgres URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return runOne(ctx, cfg, dir, u.String(), 41)
}
