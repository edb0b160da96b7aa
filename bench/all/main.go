// Command all runs every benchmark under bench/ briefly, one after another,
// and prints one table of their figures: value, baseline from the same run,
// ratio, target and whether it is met, and a count that other load does not
// move where the figure is noisy.
//
//	go run ./bench/all                 # each benchmark's brief run (minutes)
//	go run ./bench/all --short         # each one's smallest run (what CI runs)
//	go run ./bench/all --run 'fleet|pods' -v
//
// A benchmark reports its figures through bench/internal/report (a line per
// figure on its standard output). One that fails, or ends without
// reporting anything, fails the run; one that cannot run here (a tool is
// missing) reports why it skipped. Nothing about time is asserted: a missed
// target is shown, not failed.
//
// A new benchmark is one more line in benches below, and takes --short.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/runyard/runyard/bench/internal/report"
)

// bench is one benchmark: its directory under bench/ and the arguments of
// its brief run (--short replaces them).
type bench struct {
	name  string
	brief []string
}

// benches is every benchmark, in the order they run.
var benches = []bench{
	{"holder", []string{"--starts", "30", "--burst", "20", "--held", "30"}},
	{"reconnect", []string{"--restarts", "4"}},
	{"runnerapi", []string{"--runners", "2000", "--clients", "16", "--duration", "2s", "--keys", "5000", "--users", "1000", "--orgs", "20"}},
	{"fleet", []string{"--runners", "2000", "--sims", "2", "--duration", "5s"}},
	{"events", []string{"--quick", "--watchers", "1,100"}},
	{"automations", []string{"--tasks", "200", "--log-runs", "3", "--services", "100", "--idle", "3s", "--chains", "25,100", "--exec-runs", "1"}},
	{"pods", []string{"--runners", "2000", "--pods", "3000", "--agent-pods", "30"}},
	{"runnermetrics", []string{"--window", "5s", "--runners", "50", "--services", "20", "--pods", "5"}},
	{"console", []string{"--loads", "3", "--runners", "2000", "--requests", "20", "--log-mb", "50"}},
	{"envaccess", []string{"--execs", "50", "--cli-execs", "5", "--pings", "300", "--bytes", "33554432"}},
	{"faults", []string{"--quick"}},
	{"autoupdate", []string{"--runners", "100", "--archive-size", "4194304"}},
	// One run at the 20,000 files the target names (about two
	// minutes on the shared machine, most of it the prebuild and the clone).
	{"prebuilds", []string{"--files", "20000", "--runs", "1"}},
}

func main() {
	short := flag.Bool("short", false, "each benchmark's smallest run (CI): checks that it runs and reports, measures nothing worth comparing")
	runRE := flag.String("run", "", "run only the benchmarks whose name matches this regexp")
	verbose := flag.Bool("v", false, "print each benchmark's own output as it runs")
	timeout := flag.Duration("timeout", 0, "give up on one benchmark after this long (default 3m with --short, 15m without)")
	flag.Parse()
	if *timeout == 0 {
		*timeout = 15 * time.Minute
		if *short {
			*timeout = 3 * time.Minute
		}
	}
	var re *regexp.Regexp
	if *runRE != "" {
		var err error
		if re, err = regexp.Compile(*runRE); err != nil {
			fail(fmt.Errorf("--run: %w", err))
		}
	}
	ctx := context.Background()
	res, err := run(ctx, options{short: *short, match: re, verbose: *verbose, timeout: *timeout, log: os.Stderr})
	if err != nil {
		fail(err)
	}
	printTable(os.Stdout, res)
	if failed := res.failed(); len(failed) > 0 {
		fail(fmt.Errorf("failed: %s", strings.Join(failed, ", ")))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/all:", err)
	os.Exit(1)
}

type options struct {
	short   bool
	match   *regexp.Regexp
	verbose bool
	timeout time.Duration
	log     io.Writer // progress, and the output of a benchmark that failed
}

// result is one benchmark's run.
type result struct {
	name    string
	figures []report.Figure
	took    time.Duration
	err     error // it failed, or reported nothing
}

type results []result

func (rs results) failed() []string {
	var out []string
	for _, r := range rs {
		if r.err != nil {
			out = append(out, r.name)
		}
	}
	return out
}

// run builds every selected benchmark and runyard once, then runs the
// benchmarks one after another (they measure the machine: side by side
// they would measure each other).
func run(ctx context.Context, o options) (results, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	if err := checkRegistered(root); err != nil {
		return nil, err
	}
	var sel []bench
	for _, b := range benches {
		if o.match == nil || o.match.MatchString(b.name) {
			sel = append(sel, b)
		}
	}
	if len(sel) == 0 {
		return nil, errors.New("--run matches no benchmark")
	}
	dir, err := os.MkdirTemp("", "runyard-bench-all-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t0 := time.Now()
	// Without DWARF (-w) the links (runyard and each benchmark) take a
	// fraction of their time; profiles still name their functions (the
	// runtime's tables do).
	args := []string{"build", "-ldflags=-w", "-o", dir + "/", "./cmd/runyard"}
	for _, b := range sel {
		args = append(args, "./bench/"+b.name)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %w\n%s", err, out)
	}
	fmt.Fprintf(o.log, "bench/all: built %d benchmarks and runyard in %v\n", len(sel), time.Since(t0).Round(time.Millisecond))

	var rs results
	for _, b := range sel {
		args := b.brief
		if o.short {
			args = []string{"--short"}
		}
		fmt.Fprintf(o.log, "bench/all: %s %s\n", b.name, strings.Join(args, " "))
		r := runOne(ctx, o, root, filepath.Join(dir, b.name), filepath.Join(dir, "runyard"), b.name, args)
		if r.err != nil {
			fmt.Fprintf(o.log, "bench/all: %s: %v\n", b.name, r.err)
		} else {
			fmt.Fprintf(o.log, "bench/all: %s: %d figures in %v\n", b.name, len(r.figures), r.took.Round(time.Millisecond))
		}
		rs = append(rs, r)
	}
	return rs, nil
}

// runOne runs one benchmark's binary in its own process group (so that a
// timeout ends whatever it started too) and collects its figures.
func runOne(ctx context.Context, o options, root, bin, runyard, name string, args []string) result {
	r := result{name: name}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), report.BinEnv+"="+runyard)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var output lockedBuffer // both streams, shown when the benchmark fails
	var sink io.Writer = &output
	if o.verbose {
		sink = io.MultiWriter(&output, prefixWriter{o.log, name})
	}
	cmd.Stderr = sink
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.err = err
		return r
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		r.err = err
		return r
	}
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	var parseErr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f, ok, err := report.Parse(line)
		switch {
		case err != nil:
			parseErr = errors.Join(parseErr, err)
		case ok:
			if f.Bench == "" {
				f.Bench = name
			}
			r.figures = append(r.figures, f)
		default:
			fmt.Fprintln(sink, line)
		}
	}
	werr := cmd.Wait()
	r.took = time.Since(t0)
	// Anything the benchmark left in its group goes with it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.err = fmt.Errorf("no end within %v", o.timeout)
	case errors.As(werr, &exit) && exit.ExitCode() == report.ExitMissed:
		// It ran and reported: a missed target is in its figures.
	case werr != nil:
		r.err = werr
	case parseErr != nil:
		r.err = parseErr
	case len(r.figures) == 0:
		r.err = errors.New("reported no figure")
	}
	if r.err != nil && !o.verbose {
		fmt.Fprintf(o.log, "--- output of %s\n%s--- end of %s\n", name, tail(output.String(), 60), name)
	}
	return r
}

// checkRegistered fails when a directory under bench/ holds a program that
// benches does not list: it would rot unseen.
func checkRegistered(root string) error {
	mains, err := filepath.Glob(filepath.Join(root, "bench", "*", "main.go"))
	if err != nil {
		return err
	}
	var missing []string
	for _, m := range mains {
		name := filepath.Base(filepath.Dir(m))
		if name == "all" {
			continue
		}
		if !slices.ContainsFunc(benches, func(b bench) bool { return b.name == name }) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("bench/%s: not in bench/all's list (add one line to benches)", strings.Join(missing, ", bench/"))
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run from inside the runyard module")
	}
	return filepath.Dir(mod), nil
}

// printTable prints one row per figure, and one per benchmark that failed.
func printTable(w io.Writer, rs results) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "BENCH\tFIGURE\tVALUE\tBASELINE\tRATIO\tTARGET\tMET\tCOUNT")
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t%s\t\t\t\t\t\t%s\n", r.name, "FAILED", firstLine(r.err.Error()))
		}
		for _, f := range r.figures {
			if f.Skipped != "" {
				// The reason is the row's last cell, which sets no column's width.
				fmt.Fprintf(tw, "%s\t%s\tskipped\t\t\t\t\t%s\n", f.Bench, f.Name, f.Skipped)
				continue
			}
			base, ratio := "", ""
			if f.Baseline != 0 {
				base = value(f.Baseline, f.Unit)
				if f.BaselineName != "" {
					base += " (" + f.BaselineName + ")"
				}
				ratio = strconv.FormatFloat(f.Ratio(), 'f', 2, 64) + "×"
			}
			met := ""
			if f.Met != nil {
				met = map[bool]string{true: "yes", false: "NO"}[*f.Met]
			}
			count := ""
			if f.CountUnit != "" {
				count = value(f.Count, f.CountUnit)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Bench, f.Name, value(f.Value, f.Unit), base, ratio, f.Target, met, count)
		}
	}
	tw.Flush()
}

func value(v float64, unit string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	switch a := abs(v); {
	case v == float64(int64(v)):
		s = strconv.FormatInt(int64(v), 10)
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	case a > 0:
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	if unit == "" {
		return s
	}
	return s + " " + unit
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func tail(s string, lines int) string {
	ls := strings.SplitAfter(s, "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "")
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// prefixWriter prints a benchmark's output under its name.
type prefixWriter struct {
	w    io.Writer
	name string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" {
			fmt.Fprintf(p.w, "[%s] %s", p.name, l)
		}
	}
	return len(b), nil
}
