// Package report is how a benchmark under bench/ hands its figures to
// bench/all: each figure is one line on standard output, the Prefix and a
// JSON object, among the benchmark's own human-readable lines. bench/all
// runs every benchmark, collects those lines and prints them as one table;
// a benchmark run alone prints them too, so the same line is what a person
// and the table read.
//
// Every benchmark also takes --short (Short registers it): the smallest run
// that still exercises every figure, seconds long, which CI runs so that no
// benchmark rots. Short figures are not meant to be compared.
package report

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Prefix starts every figure's line.
const Prefix = "BENCH-FIGURE "

// ExitMissed is the exit status of a benchmark that ran and reported but
// missed a target it enforces; bench/all does not count it as a failure.
const ExitMissed = 2

// BinEnv names a runyard binary already built (bench/all builds it once for
// every benchmark); RunyardBinary builds one when it is unset.
const BinEnv = "RUNYARD_BENCH_BIN"

// Figure is one measured figure beside its baseline from the same run.
type Figure struct {
	Bench string  `json:"bench"`
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	// Baseline is the same figure measured without runyard in the same run
	// (a bare HTTP round trip, a pipe, a fork/exec), 0 when there is none.
	Baseline     float64 `json:"baseline,omitempty"`
	BaselineName string  `json:"baseline_name,omitempty"`
	// Target is what the issue asks of the figure; Met is nil without one.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
	// Count is a figure that other load on the machine does not move
	// (allocations, queries, bytes per operation), beside a noisy Value.
	Count     float64 `json:"count,omitempty"`
	CountUnit string  `json:"count_unit,omitempty"`
	// Skipped says why the figure was not measured (a tool is missing).
	Skipped string `json:"skipped,omitempty"`
}

// Ratio is Value over Baseline, 0 without a baseline.
func (f Figure) Ratio() float64 {
	if f.Baseline == 0 {
		return 0
	}
	return f.Value / f.Baseline
}

// Target is a condition on a figure: on its value or on its ratio to the
// baseline.
type Target struct {
	text  string
	ratio bool // on the ratio: no unit after text
	met   func(Figure) bool
}

// AtMost: the value is at most v.
func AtMost(v float64) Target {
	return Target{fmt.Sprintf("≤ %s", num(v)), false, func(f Figure) bool { return f.Value <= v }}
}

// AtLeast: the value is at least v.
func AtLeast(v float64) Target {
	return Target{fmt.Sprintf("≥ %s", num(v)), false, func(f Figure) bool { return f.Value >= v }}
}

// RatioAtMost: the value is at most r times the baseline.
func RatioAtMost(r float64) Target {
	return Target{fmt.Sprintf("≤ %s× baseline", num(r)), true, func(f Figure) bool { return f.Baseline > 0 && f.Ratio() <= r }}
}

// RatioAtLeast: the value is at least r times the baseline.
func RatioAtLeast(r float64) Target {
	return Target{fmt.Sprintf("≥ %s× baseline", num(r)), true, func(f Figure) bool { return f.Baseline > 0 && f.Ratio() >= r }}
}

func num(v float64) string {
	return fmt.Sprintf("%.4g", v)
}

var (
	mu  sync.Mutex
	out io.Writer = os.Stdout
)

// Emit prints f's line. t is the figure's target, nil when it has none.
func Emit(f Figure, t *Target) {
	if t != nil {
		met := t.met(f)
		f.Target, f.Met = t.text, &met
		if !t.ratio && f.Unit != "" {
			f.Target += " " + f.Unit
		}
	}
	var b strings.Builder
	b.WriteString(Prefix)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		panic(err) // a Figure always encodes
	}
	mu.Lock()
	defer mu.Unlock()
	io.WriteString(out, b.String())
}

// Skip reports that a benchmark (or one of its figures) did not run, and
// why: bench/all shows the reason instead of failing.
func Skip(bench, name, reason string) {
	Emit(Figure{Bench: bench, Name: name, Skipped: reason}, nil)
}

// Short registers --short on the default flag set: the benchmark's
// smallest run, for CI.
func Short() *bool {
	return flag.Bool("short", false, "the smallest run that exercises every figure (seconds; CI runs it so the benchmark does not rot; not for comparing)")
}

// ShortSet is Short on a flag set of the benchmark's own.
func ShortSet(fs *flag.FlagSet) *bool {
	return fs.Bool("short", false, "the smallest run that exercises every figure (seconds; CI runs it so the benchmark does not rot; not for comparing)")
}

// RunyardBinary returns $RUNYARD_BENCH_BIN when set, or else builds
// ./cmd/runyard into dir and returns its path. Run from the module's root.
func RunyardBinary(dir string) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "runyard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/runyard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build runyard: %w", err)
	}
	return bin, nil
}

// Parse reads a figure from one line of a benchmark's output; ok is false
// for any other line.
func Parse(line string) (f Figure, ok bool, err error) {
	rest, ok := strings.CutPrefix(line, Prefix)
	if !ok {
		return Figure{}, false, nil
	}
	if err := json.Unmarshal([]byte(rest), &f); err != nil {
		return Figure{}, true, fmt.Errorf("figure line %q: %w", line, err)
	}
	return f, true, nil
}
