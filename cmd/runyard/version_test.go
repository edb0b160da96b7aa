package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runyard/runyard/internal/buildinfo"
)

// The build every test in this package runs is stamped with these.
const (
	e2eVersion = "v0.0.0-e2e"
	e2eCommit  = "e2e0commit"
	e2eDate    = "2026-01-02T03:04:05Z"
)

var e2eLDFlags = buildinfo.LDFlags(e2eVersion, e2eCommit, e2eDate)

type versionJSON struct {
	Client buildinfo.Info `json:"client"`
	Server *struct {
		URL string `json:"url"`
		buildinfo.Info
		Error string `json:"error"`
	} `json:"server"`
}

// TestVersion checks that `runyard version` reports the stamped build of
// the client and of the server it reaches, that a server that does not
// answer is reported without failing, and that a runner reports the
// version of its binary.
func TestVersion(t *testing.T) {
	s := startServer(t, serverConfig{Env: []string{"RUNYARD_BOOTSTRAP_TOKEN=" + adminToken}})
	t.Run("ClientAndServer", func(t *testing.T) {
		var v versionJSON
		// No key: GET /version is public.
		s.mustJSON(t, "", &v, "version")
		for who, b := range map[string]buildinfo.Info{"client": v.Client, "server": v.Server.Info} {
			if b.Version != e2eVersion || b.Commit != e2eCommit || b.Date != e2eDate || !strings.HasPrefix(b.GoVersion, "go1.") || b.Platform == "" {
				t.Errorf("%s = %+v, want %s %s %s", who, b, e2eVersion, e2eCommit, e2eDate)
			}
		}
		if v.Server.URL != s.URL {
			t.Errorf("server url %q, want %q", v.Server.URL, s.URL)
		}
		out := s.mustRun(t, "", "version")
		for _, want := range []string{"Client: runyard " + e2eVersion, "Server (" + s.URL + "): runyard " + e2eVersion, "commit: " + e2eCommit, "built: " + e2eDate} {
			if !strings.Contains(out, want) {
				t.Errorf("runyard version:\n%s\nwant %q", out, want)
			}
		}
	})
	t.Run("ServerUnreachable", func(t *testing.T) {
		res := runCLI(t, emptyDir, nil, "--server", "http://"+freePort(t), "version")
		if res.Code != 0 || !strings.Contains(res.Stdout, "Client: runyard "+e2eVersion) || !strings.Contains(res.Stdout, "unreachable") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", res.Code, res.Stdout, res.Stderr)
		}
	})
	t.Run("ClientOnly", func(t *testing.T) {
		var v versionJSON
		res := runCLI(t, emptyDir, nil, "--server", "http://"+freePort(t), "version", "--client", "-o", "json")
		if err := json.Unmarshal([]byte(res.Stdout), &v); err != nil || res.Code != 0 || v.Server != nil || v.Client.Version != e2eVersion {
			t.Fatalf("exit %d, %v: %s", res.Code, err, res.Stdout)
		}
	})
	t.Run("RunnerReportsItsVersion", func(t *testing.T) {
		id, exchange := registerRunner(t, s, "version-host")
		startRunner(t, "--server", s.URL, "--exchange-token", exchange, "--state-dir", filepath.Join(t.TempDir(), "state"))
		eventually(t, "the runner reports the stamped version", func() bool {
			got, _ := phaseOf(t, s, id)
			return got.Runner.Status.Version == e2eVersion
		})
	})
}
