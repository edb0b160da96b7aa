package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestCLI_WideEveryList: every list command of the tree (found by walking
// it, so a new one is covered) has columns -o wide adds to its table.
func TestCLI_WideEveryList(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	cols := regexp.MustCompile(`\s{2,}`)
	header := func(out string) []string {
		return cols.Split(strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), -1)
	}
	n := 0
	for _, path := range commandPaths() {
		if len(path) == 0 || path[len(path)-1] != "list" {
			continue
		}
		n++
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			table := header(s.mustRun(t, adminToken, path...))
			wide := header(s.mustRun(t, adminToken, append(path, "-o", "wide")...))
			if len(wide) <= len(table) || strings.Join(wide[:len(table)], " ") != strings.Join(table, " ") {
				t.Errorf("runyard %s -o wide: columns %q, want those of the table %q and more", strings.Join(path, " "), wide, table)
			}
		})
	}
	if n < 12 {
		t.Errorf("found %d list commands, want every noun's", n)
	}
}
