package main

import (
	"regexp"
	"strings"
	"testing"
)

// userLists are the list commands of what only a user owns (their own API
// keys and SSH keys): a service account's key is refused there.
var userLists = map[string]bool{"keys list": true, "ssh-keys list": true}

// TestCLI_WideEveryList: every list command of the tree (found by walking
// it, so a new one is covered) has columns -o wide adds to its table, empty
// lists included.
func TestCLI_WideEveryList(t *testing.T) {
	t.Parallel()
	s := startCLIServer(t)
	const pw = "wide lists' passphrase"
	if r := s.runWithStdin(t, adminToken, pw+"\n", "users", "create", "--email", "wide@example.com", "--password-stdin", "--org", "default", "--role", "admin"); r.Code != 0 {
		t.Fatalf("users create: %d %q", r.Code, r.Stderr)
	}
	userToken := userKey(t, s, "wide@example.com", pw, "admin")
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
		token := adminToken
		if userLists[strings.Join(path, " ")] {
			token = userToken
		}
		t.Run(strings.Join(path, "_"), func(t *testing.T) {
			table := header(s.mustRun(t, token, path...))
			wide := header(s.mustRun(t, token, append(path, "-o", "wide")...))
			if len(wide) <= len(table) || strings.Join(wide[:len(table)], " ") != strings.Join(table, " ") {
				t.Errorf("runyard %s -o wide: columns %q, want those of the table %q and more", strings.Join(path, " "), wide, table)
			}
		})
	}
	if n < 12 {
		t.Errorf("found %d list commands, want every noun's", n)
	}
}
