package main

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/runyard/runyard/internal/apperr"
)

// TestREADME_ExitCodes checks that the README's table of exit codes lists
// every code of apperr's one table, and the signal codes.
func TestREADME_ExitCodes(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\| (\d+) \| (.+) \|$`).FindAllStringSubmatch(string(b), -1)
	listed := map[int]bool{}
	for _, r := range rows {
		n, _ := strconv.Atoi(r[1])
		listed[n] = true
	}
	want := []int{0, 1, 130, 143}
	for _, c := range apperr.Codes() {
		want = append(want, apperr.ExitCode(c))
	}
	for _, n := range want {
		if !listed[n] {
			t.Errorf("README's exit code table has no row for %d", n)
		}
	}
}
