package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestAll_Short runs every benchmark in its smallest mode, as CI does
// through the README's test command, so that none of them rots unseen: each
// must run to its end and report at least one figure (or why it skipped).
// It asserts nothing about the figures: a missed target is shown, not
// failed.
func TestAll_Short(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every benchmark (about two minutes)")
	}
	var log strings.Builder
	rs, err := run(context.Background(), options{short: true, timeout: 4 * time.Minute, log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	printTable(os.Stdout, rs)
	for _, r := range rs {
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	if t.Failed() {
		t.Logf("bench/all's log:\n%s", log.String())
	}
	if len(rs) != len(benches) {
		t.Errorf("%d benchmarks ran, %d are listed", len(rs), len(benches))
	}
}
